// plugin-zot: the zot OCI registry as a kod bundle (package-zot) and a hardened systemd service (deploy-zot).
export * from './binary.js'
export * from './config.js'
export * from './htpasswd.js'
export * from './layout.js'
export * from './manifest.js'
export * from './plan.js'
export * from './unit.js'
