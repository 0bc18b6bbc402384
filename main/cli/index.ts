/**
 * `sam <command>`: the command-line face of the engine. Thin: parses arguments, calls the engine,
 * prints. Each command lives in its own module under cli/commands/.
 */
import { infoCommand } from './commands/info.ts';
import { benchReadCommand } from './commands/bench-read.ts';
import { benchEmbedCommand } from './commands/bench-embed.ts';
import { benchTrainCommand } from './commands/bench-train.ts';
import { convertCommand } from './commands/convert.ts';
import { trainCommand } from './commands/train.ts';
import { trainRegCommand } from './commands/train-reg.ts';
import { registerCommand } from './commands/register.ts';
import { demoCommand } from './commands/demo.ts';
import { transformPointsCommand } from './commands/transform-points.ts';
import { exportOnnxCommand } from './commands/export-onnx.ts';
import { matchCommand } from './commands/match.ts';
import { evalMatchCommand } from './commands/eval-match.ts';
import { reviewCommand } from './commands/review.ts';
import { benchRegCommand } from './commands/bench-reg.ts';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Command[] = [
  infoCommand,
  convertCommand,
  trainCommand,
  trainRegCommand,
  registerCommand,
  reviewCommand,
  demoCommand,
  transformPointsCommand,
  exportOnnxCommand,
  matchCommand,
  evalMatchCommand,
  benchReadCommand,
  benchEmbedCommand,
  benchTrainCommand,
  benchRegCommand,
];

function help(): string {
  return [
    'sam - CT registration workstation engine (SAM anatomical embeddings)',
    '',
    'usage: sam <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    "Run 'sam <command> --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 1;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`sam: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error;
    // Typed engine errors already say "<file>: <problem>"; print them without a stack.
    console.error(`sam ${name}: ${err.message}`);
    if (process.env.SAM_DEBUG) console.error(err.stack);
    return 1;
  }
}
