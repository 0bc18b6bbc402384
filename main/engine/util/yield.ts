/**
 * Let the event loop run (signal handlers, IPC, progress) during long synchronous work. A
 * macrotask, on purpose: awaiting an already-resolved promise only runs microtasks.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
