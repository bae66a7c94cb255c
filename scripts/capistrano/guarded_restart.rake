# guarded-restart hooks for Capistrano 3. In your Capfile:
#
#   import "path/to/guarded_restart.rake"
#
# The deploy takes the deploy lock right after deploy:check (deploy:starting
# runs it for deploys and rollbacks alike) and releases it when the deploy
# finishes or fails. While it is held, no guard on the server starts a worker;
# if the deploy dies without unlocking, the lock expires after its TTL.
#
# Settings (capistrano-sidekiq style):
#   set :guarded_restart_roles, :all            # hosts that run guarded workers
#   set :guarded_restart_bin, "guarded-restart" # absolute path if not on PATH
#   set :guarded_restart_ttl, "30m"             # longest deploy you expect
#   set :guarded_restart_holder, -> { "alice@laptop" } # who deploys: USER@HOST by default
#
# The same holder may lock again (a re-run after a crash); another holder is
# refused while the lock is live, and unlock leaves another holder's lock alone.

require "etc"
require "shellwords"
require "socket"

namespace :load do
  task :defaults do
    set_if_empty :guarded_restart_roles, -> { :all }
    set_if_empty :guarded_restart_bin, -> { "guarded-restart" }
    set_if_empty :guarded_restart_ttl, -> { "30m" }
    set_if_empty :guarded_restart_holder, -> {
      user = [local_user, ENV["USER"], Etc.getpwuid&.name].map(&:to_s).find { |u| !u.strip.empty? }
      "#{user || 'deployer'}@#{Socket.gethostname}"
    }
  end
end

namespace :guarded_restart do
  def guarded_restart(*args)
    ([fetch(:guarded_restart_bin)] + args.map(&:to_s)).shelljoin
  end

  desc "Take the deploy lock: no guard starts a worker until unlock or expiry"
  task :lock do
    on roles(fetch(:guarded_restart_roles)) do
      execute guarded_restart(
        "lock", "--app", deploy_to,
        "--holder", fetch(:guarded_restart_holder),
        "--ttl", fetch(:guarded_restart_ttl),
        "--reason", "cap #{fetch(:stage)} #{fetch(:deploying) ? 'deploy' : 'rollback'} #{fetch(:branch)}"
      )
    end
  end

  desc "Release the deploy lock (idempotent)"
  task :unlock do
    on roles(fetch(:guarded_restart_roles)) do
      execute guarded_restart("unlock", "--app", deploy_to, "--holder", fetch(:guarded_restart_holder))
    end
  end

  desc "Show what the guard sees on each host"
  task :status do
    on roles(fetch(:guarded_restart_roles)) do |host|
      info "#{host}:\n" + capture(guarded_restart("status", "--app", deploy_to))
    end
  end
end

after "deploy:check", "guarded_restart:lock"
after "deploy:finished", "guarded_restart:unlock"
after "deploy:failed", "guarded_restart:unlock"
