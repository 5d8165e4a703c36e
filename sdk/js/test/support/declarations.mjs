// Reads the package's hand-written declarations, so tests can hold the runtime to what they promise.

import { readFileSync } from "node:fs";

const DECLARATIONS = readFileSync(new URL("../../src/index.d.ts", import.meta.url), "utf8");

/** The names the declarations export as values (classes, functions, constants). */
export function declaredValues() {
  return [...DECLARATIONS.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map(
    (match) => match[1],
  );
}

/** The fields of an exported interface, e.g. `declaredFields("Job")`. */
export function declaredFields(name) {
  const block = DECLARATIONS.match(new RegExp(`^export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`, "m"));
  if (!block) throw new Error(`index.d.ts declares no interface ${name}`);
  return [...block[1].matchAll(/^ {2}(\w+)\??:/gm)].map((match) => match[1]);
}
