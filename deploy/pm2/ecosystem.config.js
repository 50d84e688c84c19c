// Revurb under PM2: `pm2 start deploy/pm2/ecosystem.config.js`, then `pm2 save`.
// `revurb` must be on PATH (the virtualenv's bin directory) or given by its full path in `script`.
// `revurb restart` (or SIGTERM) drains the server and it exits; PM2 starts it again.
module.exports = {
  apps: [
    {
      name: "revurb",
      script: "revurb",
      args: "start --host 0.0.0.0 --port 8080",
      interpreter: "none",
      exec_mode: "fork",
      instances: 1,
      autorestart: true,
      restart_delay: 100,
      // Milliseconds before SIGKILL: longer than REVURB_GRACE_PERIOD (20 s), so the drain finishes.
      kill_timeout: 25000,
      // PM2 cannot raise the open files limit: start the PM2 daemon from a shell with `ulimit -n 65536`.
      env: {
        PYTHONUNBUFFERED: "1",
      },
    },
  ],
};
