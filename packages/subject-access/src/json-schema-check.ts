/**
 * The subset of JSON Schema (draft 2020-12) the package's own schemas use: `type` (one or
 * several), `const`, `enum`, `pattern`, `minimum`, `properties`, `required`,
 * `additionalProperties` (boolean or schema), `items`. Enough to check a portability document
 * against the very schema shipped beside it, without a validator dependency.
 */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: JsonType | readonly JsonType[];
  const?: unknown;
  enum?: readonly unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  properties?: Readonly<Record<string, JsonSchema>>;
  required?: readonly string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
}

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

function typeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

/** Problems of `value` against `schema`, as `path: message` strings; empty when it conforms. */
export function checkJsonSchema(schema: JsonSchema, value: unknown, path = '$'): string[] {
  const problems: string[] = [];
  if (schema.type !== undefined) {
    const allowed: readonly JsonType[] = typeof schema.type === 'string' ? [schema.type] : schema.type;
    const actual = typeOf(value);
    const ok = allowed.includes(actual) || (actual === 'integer' && allowed.includes('number'));
    if (!ok) return [`${path}: expected ${allowed.join(' or ')}, got ${actual}`];
  }
  if ('const' in schema && schema.const !== value)
    problems.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value))
    problems.push(`${path}: not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) {
    problems.push(`${path}: does not match ${schema.pattern}`);
  }
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) {
    problems.push(`${path}: below ${schema.minimum}`);
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => {
      problems.push(...checkJsonSchema(schema.items!, item, `${path}[${i}]`));
    });
  }
  if (typeOf(value) === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in record)) problems.push(`${path}: missing "${key}"`);
    }
    for (const [key, inner] of Object.entries(record)) {
      const declared = schema.properties?.[key];
      if (declared) problems.push(...checkJsonSchema(declared, inner, `${path}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${path}: unexpected "${key}"`);
      else if (typeof schema.additionalProperties === 'object') {
        problems.push(...checkJsonSchema(schema.additionalProperties, inner, `${path}.${key}`));
      }
    }
  }
  return problems;
}
