# guarded-restart tasks for Mina 1.x. In config/deploy.rb:
#
#   require_relative "guarded_restart"   # this file, copied next to deploy.rb
#
#   task :deploy do
#     deploy do
#       invoke :"git:clone"
#       invoke :"deploy:link_shared_paths"
#       invoke :"bundle:install"
#       invoke :"deploy:cleanup"
#       on :launch do
#         invoke :"sidekiq:restart"            # or leave the start to monit
#         invoke :"guarded_restart:verify"
#       end
#     end
#   end
#
# No lock task: Mina holds <deploy_to>/deploy.lock (empty) for the whole deploy
# and guarded-restart honours it, with its tmp/build-* directories. That lock
# carries no expiry, so give the guard a --max-lock-age that fits your deploys.

set :guarded_restart_bin, "guarded-restart"
set :guarded_restart_pidfile, -> { "#{fetch(:shared_path)}/tmp/pids/sidekiq.pid" }
set :guarded_restart_verify_wait, "60s"

namespace :guarded_restart do
  desc "Fail unless the worker runs the release current points to"
  task :verify do
    comment "guarded-restart: is the worker on the current release?"
    command %(#{fetch(:guarded_restart_bin)} verify --app "#{fetch(:deploy_to)}" --pidfile "#{fetch(:guarded_restart_pidfile)}" --wait #{fetch(:guarded_restart_verify_wait)})
  end

  desc "Show what the guard sees: locks, current, releases, the worker"
  task :status do
    command %(#{fetch(:guarded_restart_bin)} status --app "#{fetch(:deploy_to)}" --pidfile "#{fetch(:guarded_restart_pidfile)}")
  end
end
