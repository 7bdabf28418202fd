import { isMap, isSeq, isScalar, LineCounter, type Document, type Node } from 'yaml';

export type Path = readonly (string | number)[];

/** A YAML document with what is needed to turn a path into a line number. */
export interface SourceDoc {
  file: string;
  doc: Document;
  lines: LineCounter;
}

/**
 * Finds the text offset of `path` in the document: the key of a map entry (that is the line a
 * user wants to look at), or a sequence item. Returns undefined when the path is not in this file.
 */
export function offsetOf(doc: Document, path: Path): number | undefined {
  let node: Node | null | undefined = doc.contents as Node | null;
  let offset = node?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) return undefined;
      offset = (pair.key as Node).range?.[0];
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) return undefined;
      offset = item.range?.[0];
      node = item;
    } else {
      return undefined;
    }
  }
  return offset;
}

/** `file:line:col` of the deepest part of `path` found in the first source (child first) that has it. */
export function locate(sources: readonly SourceDoc[], path: Path): { file: string; line?: number; column?: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth);
    for (const source of sources) {
      const offset = offsetOf(source.doc, prefix);
      if (offset !== undefined && (depth > 0 || sources.length === 1 || source === sources[0])) {
        const { line, col } = source.lines.linePos(offset);
        return { file: source.file, line, column: col };
      }
    }
  }
  return { file: sources[0]?.file ?? '?' };
}

/** `nodes[0].cpus` from ['nodes', 0, 'cpus']. */
export function dotPath(path: Path): string {
  return path.reduce<string>(
    (text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text ? `${text}.${segment}` : segment),
    '',
  );
}
