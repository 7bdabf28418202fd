import { InputError } from '../util/errors.js';

/** `--axis NAME=v1,v2,...`: the variable and its values, in order; bad input unless `min` or more distinct values. */
export function parseAxis(text: string, min = 2): { name: string; values: string[] } {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(text);
  if (!match) throw new InputError(`--axis takes NAME=value1,value2,... with NAME a variable name, not "${text}"`);
  const values = (match[2] as string).split(',').map((v) => v.trim());
  if (values.length < min || values.some((v) => v === ''))
    throw new InputError(
      `--axis ${match[1]} needs ${min === 1 ? 'a value' : 'two or more values'}, separated by commas, none empty: "${text}"`,
    );
  const twice = values.find((v, i) => values.indexOf(v) !== i);
  if (twice) throw new InputError(`--axis ${match[1]} names ${twice} twice`);
  return { name: match[1] as string, values };
}
