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

/** The option of `usage` nearest to `given` (edit distance at most 3), if any. */
export function nearestOption(given: string, usage: string): string | undefined {
  const options = [...new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? [])];
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diagonal = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const up = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = up;
      }
    }
    return row[b.length];
  };
  let best: string | undefined;
  let bestDistance = 4;
  for (const o of options) {
    const d = distance(given, o);
    if (d < bestDistance) [best, bestDistance] = [o, d];
  }
  return best;
}

/**
 * `--tau -1` as `--tau=-1`: node's parseArgs takes a value that starts with '-' for an option and
 * refuses it as ambiguous, so a negative number would get that message instead of the option's own
 * range check. (No option of sam is a flag followed by a negative-number argument.)
 */
export function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (/^--[a-z][a-z0-9-]*$/.test(args[i]) && /^-(\d|\.\d)/.test(args[i + 1] ?? '')) {
      out.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
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
    return await cmd.run(joinNegativeValues(rest));
  } catch (e) {
    const err = e as Error & { code?: string };
    // a mistyped option: say so plainly, with the nearest option of the command (node's own message
    // suggests quoting it as a positional argument)
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const given = /'([^']*)'/.exec(err.message)?.[1] ?? '';
      const near = nearestOption(given, cmd.usage);
      console.error(
        `sam ${name}: unknown option ${given}${near ? ` (did you mean ${near}?)` : ''}; 'sam ${name} --help' lists its options`,
      );
      return 2;
    }
    // Typed engine errors already say "<file>: <problem>"; print them without a stack.
    console.error(`sam ${name}: ${err.message}`);
    if (process.env.SAM_DEBUG) console.error(err.stack);
    return 1;
  }
}
