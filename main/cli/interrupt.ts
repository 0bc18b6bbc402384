/**
 * Ctrl-C for the long commands (sam train, sam train-reg, sam register): the first interrupt aborts
 * the returned signal (training finishes its iteration and saves a checkpoint; a registration stops
 * at its next check and writes nothing); a second one quits at once with 130. One that comes within a
 * second of the first is the same interrupt delivered twice (GNU `timeout -s INT` signals the command
 * and its process group) and is ignored. SIGTERM (a cluster's time limit, `kill`) is treated as the
 * first interrupt.
 */
export interface InterruptMessages {
  /** Printed on the first interrupt (SIGINT) and on a SIGTERM. */
  interrupted: string;
  terminated: string;
  /** Printed before quitting at once on the second. */
  quitting: string;
}

const TRAINING: InterruptMessages = {
  interrupted: 'interrupted: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)',
  terminated: 'terminated: finishing this step and saving a checkpoint (a second signal quits at once)',
  quitting: 'quitting at once: the step in progress is lost; --resume continues from the latest checkpoint',
};

export function trainingInterrupt(): { signal: AbortSignal; exitCode(): number; dispose(): void } {
  return commandInterrupt(TRAINING);
}

export function commandInterrupt(messages: InterruptMessages): {
  signal: AbortSignal;
  exitCode(): number;
  dispose(): void;
} {
  const controller = new AbortController();
  let firstInterrupt = 0;
  let first: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    const now = performance.now();
    if (!firstInterrupt) {
      firstInterrupt = now;
      first = signal;
      console.error(`\n${signal === 'SIGTERM' ? messages.terminated : messages.interrupted}`);
      controller.abort();
    } else if (now - firstInterrupt > 1000) {
      console.error(`\n${messages.quitting}`);
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    /** The exit status of a command stopped by the interrupt: 143 after SIGTERM, else 130. */
    exitCode: () => (first === 'SIGTERM' ? 143 : 130),
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
