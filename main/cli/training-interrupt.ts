/**
 * Ctrl-C for the training commands (sam train, sam train-reg): the first interrupt aborts the
 * returned signal (the loop finishes its iteration and saves a checkpoint); a second one quits at
 * once with 130. One that comes within a second of the first is the same interrupt delivered twice
 * (GNU `timeout -s INT` signals the command and its process group) and is ignored.
 */
export function trainingInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let firstInterrupt = 0;
  const onSigint = (): void => {
    const now = performance.now();
    if (!firstInterrupt) {
      firstInterrupt = now;
      console.error('\ninterrupted: finishing this iteration and saving a checkpoint (Ctrl-C again to quit at once)');
      controller.abort();
    } else if (now - firstInterrupt > 1000) process.exit(130);
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => void process.off('SIGINT', onSigint) };
}
