// electron-vite: builds main (Node), preload and renderer (React) into out/.
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  main: {
    build: {
      // The registration worker is its own entry: Electron forks it as a utilityProcess.
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'main/index.ts'),
          'register-worker': resolve(__dirname, 'main/engine/workstation/register-worker.ts'),
          // the NCC matcher's worker threads (bench/ncc-threads.ts), started from the registration worker
          'ncc-match-worker': resolve(__dirname, 'main/engine/bench/ncc-match-worker.ts'),
          // the SAM matcher's search on worker threads (sam/match-threads.ts)
          'match-worker': resolve(__dirname, 'main/engine/sam/match-worker.ts'),
          // the deform stage's box sums on worker threads (register/deform/box-sum-threads.ts)
          'box-sum-worker': resolve(__dirname, 'main/engine/register/deform/box-sum-worker.ts'),
          // the cascade's field, warp and Jacobian slabs on worker threads (register/cascade-tail-threads.ts)
          'cascade-tail-worker': resolve(__dirname, 'main/engine/register/cascade-tail-worker.ts'),
          // the body masks on worker threads during the embedding (volume/mask-threads.ts)
          'mask-worker': resolve(__dirname, 'main/engine/volume/mask-worker.ts'),
        },
        // shared chunks beside the entries (not in chunks/): a module that starts a worker thread
        // finds the entry's built .js beside its own chunk (compute/start-thread.ts)
        output: { chunkFileNames: '[name]-[hash].js' },
      },
      // Native and WASM-carrying packages stay as runtime requires.
      externalizeDeps: true,
    },
  },
  preload: {
    // A sandboxed preload cannot be an ES module: emit CommonJS as index.cjs.
    build: {
      rollupOptions: {
        input: { index: resolve(__dirname, 'preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'renderer'),
    build: { rollupOptions: { input: { index: resolve(__dirname, 'renderer/index.html') } } },
    plugins: [react()],
  },
});
