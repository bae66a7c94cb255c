set :application, "probe"
set :repo_url, ENV.fetch("E2E_REPO")
set :branch, ENV.fetch("E2E_BRANCH")
set :deploy_to, ENV.fetch("E2E_DEPLOY_TO")
set :keep_releases, 20
set :linked_dirs, %w[log tmp/pids]
set :log_level, :info
set :guarded_restart_bin, ENV["E2E_GUARD"]
set :guarded_restart_ttl, ENV.fetch("E2E_LOCK_TTL", "30m")

set :guarded_restart_verify_wait, ENV.fetch("E2E_VERIFY_WAIT", "30s")
set :guarded_restart_pidfile_match, "sidekiq"

# One "host" per sshd on 127.0.0.1; the two_hosts scenario adds a second one
# whose sshd sets E2E_HOST=b, so `${E2E_HOST}` in deploy_to picks its own root.
[ENV.fetch("E2E_SSH_PORT"), ENV["E2E_SSH_PORT_B"]].compact.each do |port|
  server "127.0.0.1",
    port: Integer(port),
    user: ENV.fetch("E2E_USER"),
    roles: %w[app worker],
    ssh_options: {
      port: Integer(port),
      keys: [ENV.fetch("E2E_SSH_KEY")],
      keys_only: true,
      auth_methods: %w[publickey],
      user_known_hosts_file: "/dev/null",
      verify_host_key: :never,
    }
end
