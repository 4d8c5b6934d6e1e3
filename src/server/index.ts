/** `lockstep/server`: the status page and JSON API, to run or to mount. */
export type { StatusHandler, StatusServerOptions } from './handler.js';
export { createStatusHandler } from './handler.js';
export type { RunningServer, ServeOptions } from './serve.js';
export { serve } from './serve.js';
