# capistrano-sidekiq 1.x's default hook order, written as plain tasks (the gem
# is not packaged for Debian): quiet after deploy:starting, stop after
# deploy:updated and deploy:reverted, start after deploy:published (skipped
# when the pidfile is alive), restart after deploy:failed.
#
# e2e:race_window stands for asset compilation and migrations: the time
# between the stop and the flip of current in which monit can fire.

namespace :sidekiq do
  def sidekiq_pidfile
    shared_path.join("tmp/pids/sidekiq.pid")
  end

  def sidekiq_alive?
    test("[ -f #{sidekiq_pidfile} ] && kill -0 $(cat #{sidekiq_pidfile}) 2>/dev/null")
  end

  task :quiet do
    on roles(:worker) do
      execute "kill -TSTP $(cat #{sidekiq_pidfile})" if sidekiq_alive?
    end
  end

  task :stop do
    on roles(:worker) do
      if sidekiq_alive?
        # As sidekiqctl did: TERM, wait until it is gone (or a zombie waiting
        # for a slow PID 1: stopped all the same), remove the pidfile.
        execute "pid=$(cat #{sidekiq_pidfile}); kill -TERM $pid; for i in $(seq 300); do " \
                "grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status || break; sleep 0.1; done; " \
                "rm -f #{sidekiq_pidfile}"
      end
    end
  end

  task :start do
    next if ENV["E2E_START_BY_DEPLOY"] == "0"
    on roles(:worker) do
      if sidekiq_alive?
        info "sidekiq is already running (pid #{capture(:cat, sidekiq_pidfile)}): skipping start"
      else
        execute shared_path.join("bin/restart_sidekiq.sh")
      end
    end
  end

  task :restart do
    invoke! "sidekiq:stop"
    invoke! "sidekiq:start"
  end
end

namespace :e2e do
  task :race_window do
    pause = ENV.fetch("E2E_RACE_PAUSE", "0").to_f
    if pause.positive?
      $stderr.puts "compiling assets and migrating (#{pause}s): the race window"
      sleep pause
    end
    raise "e2e: the migration failed (E2E_FAIL_AFTER_STOP)" if ENV["E2E_FAIL_AFTER_STOP"] == "1"
  end
end

after "deploy:starting", "sidekiq:quiet"
after "deploy:updated", "sidekiq:stop"
after "deploy:reverted", "sidekiq:stop"
after "deploy:updated", "e2e:race_window"
after "deploy:reverted", "e2e:race_window"
after "deploy:published", "sidekiq:start"
after "deploy:failed", "sidekiq:restart"
