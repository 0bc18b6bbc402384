/**
 * Entry of the self-contained `sam` bundle for the lent GPU machine (no Node modules there): the
 * same CLI, with tfjs' gradient functions imported statically (a bundler resolves tfjs-core's
 * extensionless ESM imports, which plain Node cannot).
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { main } from '../../main/cli/index.ts';

process.exitCode = await main(process.argv.slice(2));
