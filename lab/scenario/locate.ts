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

/**
 * The file a merged value came from. Mappings merge key by key, so ownership is decided one level
 * down; a list or scalar replaces the parent's wholesale, so the child-most file that has it owns
 * everything below it.
 */
function ownerOf(sources: readonly SourceDoc[], path: Path): SourceDoc | undefined {
  let candidates = sources;
  for (let depth = 1; depth <= path.length; depth++) {
    const prefix = path.slice(0, depth);
    const having = candidates.filter((source) => offsetOf(source.doc, prefix) !== undefined);
    const first = having[0];
    if (!first) break;
    if (!isMap(first.doc.getIn(prefix, true))) return first;
    candidates = having;
  }
  return candidates[0];
}

/** `file:line:col` of the deepest part of `path` that exists in the file that owns it. */
export function locate(sources: readonly SourceDoc[], path: Path): { file: string; line?: number; column?: number } {
  const owner = ownerOf(sources, path) ?? sources[0];
  if (!owner) return { file: '?' };
  for (let depth = path.length; depth >= 0; depth--) {
    const offset = offsetOf(owner.doc, path.slice(0, depth));
    if (offset !== undefined) {
      const { line, col } = owner.lines.linePos(offset);
      return { file: owner.file, line, column: col };
    }
  }
  return { file: owner.file };
}

/** `nodes[0].cpus` from ['nodes', 0, 'cpus']. */
export function dotPath(path: Path): string {
  return path.reduce<string>(
    (text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text ? `${text}.${segment}` : segment),
    '',
  );
}
