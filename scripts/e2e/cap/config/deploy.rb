set :application, "probe"
set :repo_url, ENV.fetch("E2E_REPO")
set :branch, ENV.fetch("E2E_BRANCH")
set :deploy_to, ENV.fetch("E2E_DEPLOY_TO")
set :keep_releases, 20
set :linked_dirs, %w[log tmp/pids]
set :log_level, :info
set :guarded_restart_bin, ENV["E2E_GUARD"]
set :guarded_restart_ttl, ENV.fetch("E2E_LOCK_TTL", "30m")

server "127.0.0.1",
  user: ENV.fetch("E2E_USER"),
  roles: %w[app worker],
  ssh_options: {
    port: Integer(ENV.fetch("E2E_SSH_PORT")),
    keys: [ENV.fetch("E2E_SSH_KEY")],
    keys_only: true,
    auth_methods: %w[publickey],
    user_known_hosts_file: "/dev/null",
    verify_host_key: :never,
  }
