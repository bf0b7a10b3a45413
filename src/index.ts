// The public surface of kod for plugins: types only (see src/api.ts).
export * from './api.js'
