# guarded-restart for Capistrano 3. Copy this file into your app (for example
# lib/capistrano/tasks/) and import it from the Capfile:
#
#   import "lib/capistrano/tasks/guarded_restart.rake"
#
# Tasks and hooks:
#   guarded_restart:lock    after deploy:check (deploy:starting runs it for deploys
#                           and rollbacks): no guard on the servers starts a worker
#                           until unlock, or until the lock's TTL if the deploy dies
#   guarded_restart:unlock  after deploy:finished and deploy:failed
#   guarded_restart:verify  after deploy:finished: every worker must run its host's
#                           current release and every host the same revision, else
#                           the deploy fails with a per-host table
#   guarded_restart:status  the same table, on demand
#
# Settings (capistrano-sidekiq style), with their defaults:
#   set :guarded_restart_roles, :all                # hosts that run guarded workers
#   set :guarded_restart_bin, "guarded-restart"     # an absolute path if not on PATH
#   set :guarded_restart_ttl, "30m"                 # the longest deploy you expect
#   set :guarded_restart_holder, "USER@HOST"        # who deploys (the deployer's machine)
#   set :guarded_restart_pidfile, -> { shared_path.join("tmp/pids/sidekiq.pid") }
#   set :guarded_restart_pidfile_match, nil         # e.g. "sidekiq": also fail on workers the pidfile does not name
#   set :guarded_restart_verify, true               # run verify after deploy:finished
#   set :guarded_restart_verify_wait, "60s"         # how long a worker may take to come up
#
# The same holder may lock again (a re-run after a crash); another holder is
# refused while the lock is live, and unlock leaves another holder's lock alone.
#
# Paths (deploy_to, the pidfile) are passed as Capistrano itself passes them, unquoted;
# free text (holder, reason) is shell-escaped.

require "etc"
require "json"
require "shellwords"
require "socket"

namespace :load do
  task :defaults do
    set_if_empty :guarded_restart_roles, :all
    set_if_empty :guarded_restart_bin, "guarded-restart"
    set_if_empty :guarded_restart_ttl, "30m"
    set_if_empty :guarded_restart_holder, -> {
      user = [local_user, ENV["USER"], Etc.getpwuid&.name].map(&:to_s).find { |u| !u.strip.empty? }
      "#{user || 'deployer'}@#{Socket.gethostname}"
    }
    set_if_empty :guarded_restart_pidfile, -> { shared_path.join("tmp/pids/sidekiq.pid") }
    set_if_empty :guarded_restart_pidfile_match, nil
    set_if_empty :guarded_restart_verify, true
    set_if_empty :guarded_restart_verify_wait, "60s"
  end
end

module GuardedRestart
  module_function

  # `guarded-restart SUBCOMMAND --app DEPLOY_TO ARGS...`
  def command(bin, subcommand, deploy_to, *args)
    [bin.to_s.shellescape, subcommand, "--app", deploy_to.to_s, *args.map { |a| a.to_s.shellescape }].join(" ")
  end

  def table(reports)
    header = %w[host state current\ release revision worker worker\ release]
    rows = reports.sort.map do |host, r|
      worker = r["worker"] || {}
      [host, r["state"], File.basename(r["current_release"].to_s), r["current_revision"].to_s[0, 12],
       worker["pid"].to_s, File.basename(worker["release"].to_s)]
    end
    widths = header.each_index.map { |i| ([header] + rows).map { |row| row[i].to_s.size }.max }
    ([header] + rows).map { |row| row.each_with_index.map { |c, i| c.to_s.ljust(widths[i]) }.join("  ").rstrip }.join("\n")
  end

  # What is wrong across the hosts, one line each; empty when all is well.
  def problems(reports)
    found = reports.sort.reject { |_, r| r["state"] == "ok" }.map { |host, r| "#{host}: #{r['message']}" }
    revisions = reports.values.map { |r| r["current_revision"] }.uniq
    found << "hosts' current revisions differ: #{revisions.map(&:inspect).join(', ')}" if revisions.size > 1
    found
  end
end

namespace :guarded_restart do
  def guarded_restart_reports(wait)
    reports = {}
    mutex = Mutex.new
    on roles(fetch(:guarded_restart_roles)) do |host|
      match = fetch(:guarded_restart_pidfile_match)
      cmd = GuardedRestart.command(fetch(:guarded_restart_bin), "verify", deploy_to, "--wait", wait, "--json",
                                   *(match ? ["--pidfile-match", match] : [])) +
            " --pidfile #{fetch(:guarded_restart_pidfile)}"
      out = capture(cmd, raise_on_non_zero_exit: false)
      report = begin
        JSON.parse(out)
      rescue JSON::ParserError
        { "state" => "error", "message" => out.strip }
      end
      mutex.synchronize { reports["#{host.hostname}:#{host.port || 22}"] = report }
    end
    reports
  end

  desc "Take the deploy lock: no guard starts a worker until unlock or expiry"
  task :lock do
    on roles(fetch(:guarded_restart_roles)) do
      execute GuardedRestart.command(
        fetch(:guarded_restart_bin), "lock", deploy_to,
        "--holder", fetch(:guarded_restart_holder),
        "--ttl", fetch(:guarded_restart_ttl),
        "--reason", "cap #{fetch(:stage)} #{fetch(:deploying) ? 'deploy' : 'rollback'} #{fetch(:branch)}"
      )
    end
  end

  desc "Release the deploy lock (idempotent)"
  task :unlock do
    on roles(fetch(:guarded_restart_roles)) do
      execute GuardedRestart.command(fetch(:guarded_restart_bin), "unlock", deploy_to,
                                     "--holder", fetch(:guarded_restart_holder))
    end
  end

  desc "Fail unless every worker runs its host's current release and all hosts run one revision"
  task :verify do
    next unless fetch(:guarded_restart_verify)
    reports = guarded_restart_reports(fetch(:guarded_restart_verify_wait))
    table = GuardedRestart.table(reports)
    problems = GuardedRestart.problems(reports)
    if problems.empty?
      run_locally { info "guarded-restart: every worker runs current\n#{table}" }
    else
      run_locally { error "guarded-restart: workers are not on current\n#{table}" }
      raise "guarded-restart verify failed: #{problems.join('; ')}"
    end
  end

  desc "Show, per host, the current release and the release each worker runs"
  task :status do
    reports = guarded_restart_reports("0")
    table = GuardedRestart.table(reports)
    run_locally { info "guarded-restart status\n#{table}" }
  end
end

after "deploy:check", "guarded_restart:lock"
after "deploy:finished", "guarded_restart:unlock"
after "deploy:finished", "guarded_restart:verify"
after "deploy:failed", "guarded_restart:unlock"
