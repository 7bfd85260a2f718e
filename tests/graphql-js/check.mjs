// Checks Guildhall's GraphQL contract with the reference implementation, graphql-js:
//
//   1. schema.graphql builds (`buildSchema`) and is a valid schema (`assertValidSchema`);
//   2. every operation of examples/operations.graphql, and every ```graphql block of README.md
//      (each block one document; SDL excerpts are skipped), parses and validates against it;
//   3. with GUILDHALL_URL set, the server's standard introspection answers without errors and
//      prints exactly as schema.graphql does (both sorted), and every example query that needs
//      no variables, sent anonymously, answers with data or with errors carrying `extensions.code`.
//
// Prints one summary line and exits non-zero on any failure; see ./run for how CI starts a server.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Kind,
  Source,
  assertValidSchema,
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  parse,
  print,
  printSchema,
  validate,
  version,
  visit,
} from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCHEMA = 'schema.graphql';
const EXAMPLES = 'examples/operations.graphql';
const README = 'README.md';
// A ```graphql block of README.md starting with one of these is an SDL excerpt, not an operation.
const SDL_START = /^(type|input|schema|enum|scalar|interface|union|directive|extend)\b/;

const failures = [];
const fail = (message) => failures.push(message);

function read(path) {
  return readFileSync(join(root, path), 'utf8');
}

// "file:line:column: message" for each location of a GraphQL error; `lineOffset` maps a line of
// an extracted block back to the line of the file it came from.
function located(file, error, lineOffset = 0) {
  const locations = error.locations ?? [];
  if (locations.length === 0) return `${file}: ${error.message}`;
  return locations
    .map(({ line, column }) => `${file}:${line + lineOffset}:${column}: ${error.message}`)
    .join('\n');
}

function finish(summary) {
  if (failures.length > 0) {
    console.error(`graphql-js ${version}: ${failures.length} failure(s):\n`);
    for (const failure of failures) console.error(`${failure}\n`);
    console.error(`graphql-js: FAILED (${summary})`);
    process.exit(1);
  }
  console.log(`graphql-js: ${summary}`);
}

// --- 1. The committed schema ------------------------------------------------------------------

let schema;
try {
  schema = buildSchema(new Source(read(SCHEMA), SCHEMA));
  assertValidSchema(schema);
} catch (error) {
  fail(`${SCHEMA}: not a valid schema for graphql-js ${version}:\n${error.message}`);
  finish('schema.graphql is invalid');
}

// The contract's mutation convention: `doThing(input: DoThingInput!)`, one argument.
for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
  const expected = `${field.name[0].toUpperCase()}${field.name.slice(1)}Input!`;
  const args = field.args.map((arg) => `${arg.name}: ${arg.type}`);
  if (args.length !== 1 || args[0] !== `input: ${expected}`) {
    fail(`${SCHEMA}: Mutation.${field.name}(${args.join(', ')}) should take one \`input: ${expected}\``);
  }
}

// --- 2. Operations: examples and README ---------------------------------------------------------

// Parses and validates one document; returns its AST, or null when it does not parse.
function check(file, text, lineOffset = 0) {
  let document;
  try {
    document = parse(new Source(text, file));
  } catch (error) {
    fail(located(file, error, lineOffset));
    return null;
  }
  for (const error of validate(schema, document)) fail(located(file, error, lineOffset));
  return document;
}

const operationsOf = (document) =>
  document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);

const examplesText = read(EXAMPLES);
const examples = check(EXAMPLES, examplesText);
const exampleOperations = examples ? operationsOf(examples) : [];
for (const operation of exampleOperations) {
  if (!operation.name) {
    fail(`${EXAMPLES}:${operation.loc.startToken.line}: every example operation needs a name`);
  }
}
if (examples && exampleOperations.length === 0) fail(`${EXAMPLES}: no operations`);

// README's ```graphql blocks, with the README line each starts on.
const readmeBlocks = [];
{
  const lines = read(README).split('\n');
  let open = null;
  lines.forEach((line, index) => {
    if (open === null) {
      const fence = /^\s*```graphql\s*$/.exec(line);
      if (fence) open = { startLine: index + 1, body: [] };
    } else if (/^\s*```\s*$/.test(line)) {
      readmeBlocks.push({ startLine: open.startLine, text: open.body.join('\n') });
      open = null;
    } else {
      open.body.push(line);
    }
  });
  if (open !== null) fail(`${README}:${open.startLine}: unterminated \`\`\`graphql block`);
}

let readmeOperations = 0;
let readmeSkipped = 0;
for (const block of readmeBlocks) {
  const firstCode = block.text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#'));
  if (firstCode === undefined) continue;
  if (SDL_START.test(firstCode)) {
    readmeSkipped += 1;
    continue;
  }
  // The block's first line is the README line after the fence.
  const document = check(README, block.text, block.startLine);
  if (document) readmeOperations += operationsOf(document).length;
}

const totalOperations = exampleOperations.length + readmeOperations;
const readmeNote =
  `${readmeOperations} from README` +
  (readmeSkipped > 0 ? `, ${readmeSkipped} SDL block${readmeSkipped === 1 ? '' : 's'} skipped` : '');
const operationsInvalid = failures.length > 0;
const operationsPhrase = () =>
  `${totalOperations} operations ${operationsInvalid ? 'checked, NOT all valid' : 'valid'} (${readmeNote})`;

// Root fields no example uses: a hint for whoever extends the schema, not a failure.
if (examples) {
  const used = new Set();
  for (const operation of exampleOperations) {
    const rootType = schema.getRootType(operation.operation);
    visit(operation.selectionSet, {
      Field(node) {
        used.add(`${rootType.name}.${node.name.value}`);
        return false;
      },
    });
  }
  const unused = [schema.getMutationType(), schema.getSubscriptionType()]
    .filter(Boolean)
    .flatMap((type) => Object.keys(type.getFields()).map((name) => `${type.name}.${name}`))
    .filter((name) => !used.has(name));
  if (unused.length > 0) console.log(`graphql-js: note: no example uses ${unused.join(', ')}`);
}

// --- 3. The running server ----------------------------------------------------------------------

const url = process.env.GUILDHALL_URL;
if (!url) {
  finish(
    `${operationsPhrase()}, introspection not checked (GUILDHALL_URL unset)`,
  );
  process.exit(0);
}
const endpoint = `${url.replace(/\/+$/, '')}/graphql`;

async function post(body) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  try {
    return { status: response.status, json: JSON.parse(text) };
  } catch {
    return { status: response.status, json: null, text };
  }
}

// A unified-style diff of two line lists (LCS), cut after `maxLines` output lines.
function unifiedDiff(aName, bName, a, b, context = 3, maxLines = 80) {
  const n = a.length;
  const m = b.length;
  // Trim the common prefix and suffix so the LCS table stays small.
  let start = 0;
  while (start < n && start < m && a[start] === b[start]) start += 1;
  let endA = n;
  let endB = m;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const rows = endA - start;
  const cols = endB - start;
  const table = new Uint32Array((rows + 1) * (cols + 1));
  const at = (i, j) => i * (cols + 1) + j;
  for (let i = rows - 1; i >= 0; i -= 1) {
    for (let j = cols - 1; j >= 0; j -= 1) {
      table[at(i, j)] =
        a[start + i] === b[start + j]
          ? table[at(i + 1, j + 1)] + 1
          : Math.max(table[at(i + 1, j)], table[at(i, j + 1)]);
    }
  }
  // Edit script over the whole files: [' ' | '-' | '+', line, lineA, lineB].
  const ops = [];
  for (let k = 0; k < start; k += 1) ops.push([' ', a[k], k, k]);
  let i = 0;
  let j = 0;
  while (i < rows || j < cols) {
    if (i < rows && j < cols && a[start + i] === b[start + j]) {
      ops.push([' ', a[start + i], start + i, start + j]);
      i += 1;
      j += 1;
    } else if (i < rows && (j === cols || table[at(i + 1, j)] >= table[at(i, j + 1)])) {
      ops.push(['-', a[start + i], start + i, start + j]);
      i += 1;
    } else {
      ops.push(['+', b[start + j], start + i, start + j]);
      j += 1;
    }
  }
  for (let k = 0; k < n - endA; k += 1) ops.push([' ', a[endA + k], endA + k, endB + k]);

  const out = [`--- ${aName}`, `+++ ${bName}`];
  let k = 0;
  while (k < ops.length && out.length < maxLines) {
    if (ops[k][0] === ' ') {
      k += 1;
      continue;
    }
    const from = Math.max(0, k - context);
    // Extend the hunk while changes are within 2 * context lines of each other.
    let lastChange = k;
    for (let next = k + 1; next < ops.length && next - lastChange <= 2 * context; next += 1) {
      if (ops[next][0] !== ' ') lastChange = next;
    }
    const to = Math.min(ops.length, lastChange + context + 1);
    const hunk = ops.slice(from, to);
    const countA = hunk.filter((op) => op[0] !== '+').length;
    const countB = hunk.filter((op) => op[0] !== '-').length;
    out.push(`@@ -${hunk[0][2] + 1},${countA} +${hunk[0][3] + 1},${countB} @@`);
    for (const [mark, line] of hunk) {
      if (out.length >= maxLines) {
        out.push('… (diff cut)');
        break;
      }
      out.push(`${mark}${line}`);
    }
    k = to;
  }
  return out.join('\n');
}

let introspectionNote = 'introspection matches schema.graphql';
try {
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  });
  const { status, json, text } = await post({ query });
  if (json === null) {
    throw new Error(`introspection: HTTP ${status}, not JSON: ${text.slice(0, 300)}`);
  }
  if (json.errors?.length) {
    throw new Error(`introspection: HTTP ${status}, errors: ${JSON.stringify(json.errors, null, 2)}`);
  }
  if (!json.data?.__schema) throw new Error(`introspection: HTTP ${status}, no data.__schema`);
  // async-graphql answers `__schema.description` with a fixed sentence (graphql-js's own text
  // for the __Schema type) instead of null; the schema itself has no description to compare.
  json.data.__schema.description = null;
  const served = printSchema(lexicographicSortSchema(buildClientSchema(json.data)));
  const committed = printSchema(lexicographicSortSchema(schema));
  if (served !== committed) {
    introspectionNote = 'introspection DIFFERS from schema.graphql';
    fail(
      `introspection of ${endpoint} differs from ${SCHEMA} (both printed by graphql-js, sorted):\n` +
        unifiedDiff(SCHEMA, `${endpoint} (introspection)`, committed.split('\n'), served.split('\n')),
    );
  }
} catch (error) {
  introspectionNote = 'introspection FAILED';
  fail(error.message);
}

// Example queries that need no variables, sent without credentials.
const fragments = new Map(
  (examples?.definitions ?? [])
    .filter((definition) => definition.kind === Kind.FRAGMENT_DEFINITION)
    .map((fragment) => [fragment.name.value, fragment]),
);
// The operation and the fragments it reaches, as one document (servers refuse unused fragments).
function standalone(operation) {
  const needed = new Set();
  const queue = [operation];
  while (queue.length > 0) {
    visit(queue.pop(), {
      FragmentSpread(node) {
        const name = node.name.value;
        if (!needed.has(name) && fragments.has(name)) {
          needed.add(name);
          queue.push(fragments.get(name));
        }
      },
    });
  }
  return [operation, ...[...needed].map((name) => fragments.get(name))].map(print).join('\n\n');
}

const anonymousQueries = exampleOperations.filter(
  (operation) =>
    operation.operation === 'query' &&
    operation.name &&
    (operation.variableDefinitions ?? []).every(
      (definition) => definition.type.kind !== Kind.NON_NULL_TYPE || definition.defaultValue,
    ),
);
const answers = [];
for (const operation of anonymousQueries) {
  const name = operation.name.value;
  const where = `${EXAMPLES}:${operation.loc.startToken.line}: ${name}`;
  try {
    const { status, json, text } = await post({ query: standalone(operation), operationName: name });
    if (json === null || typeof json !== 'object') {
      fail(`${where}: HTTP ${status}, not a JSON object: ${String(text).slice(0, 300)}`);
      continue;
    }
    const errors = json.errors ?? [];
    const uncoded = errors.filter((error) => typeof error?.extensions?.code !== 'string');
    const internal = errors.filter((error) => error?.extensions?.code === 'INTERNAL');
    if (uncoded.length > 0) {
      fail(`${where}: error(s) without extensions.code: ${JSON.stringify(uncoded)}`);
    } else if (internal.length > 0) {
      // INTERNAL is a server fault by contract; a valid query without credentials never earns one.
      fail(`${where}: INTERNAL error(s): ${JSON.stringify(internal)}`);
    } else if (errors.length === 0 && (json.data === null || typeof json.data !== 'object')) {
      fail(`${where}: HTTP ${status}, neither data nor errors: ${JSON.stringify(json).slice(0, 300)}`);
    } else {
      const codes = [...new Set(errors.map((error) => error.extensions.code))];
      answers.push(`${name}: ${codes.length > 0 ? codes.join(',') : 'data'}`);
    }
  } catch (error) {
    fail(`${where}: ${error.message}`);
  }
}
if (answers.length > 0) console.log(`graphql-js: anonymous example queries: ${answers.join('; ')}`);

finish(
  `${operationsPhrase()}, ${introspectionNote}, ` +
    `${answers.length}/${anonymousQueries.length} example queries answered anonymously`,
);
