#!/usr/bin/env node
// `sam` command-line entry: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
