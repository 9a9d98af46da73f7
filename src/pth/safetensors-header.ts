/**
 * The safetensors header, parsed by the reference implementation's rules (huggingface
 * safetensors, safetensors/src/tensor.rs: `serde_json::from_str` into
 * `{"__metadata__": Option<HashMap<String, String>>, <name>: TensorInfo {dtype, shape:
 * Vec<usize>, data_offsets: (usize, usize)}}`):
 * - JSON whitespace is allowed before and after the object (the reference writer pads
 *   with trailing spaces; its "must start with '{'" check is commented out, so leading
 *   spaces are accepted too);
 * - shape and offsets are JSON integers: `2.0`, `2e0` and negative values are refused
 *   (serde refuses a float for a usize);
 * - nesting deeper than serde_json's recursion limit (128, the outer object counting as
 *   one) is refused; unknown fields of a tensor entry are skipped, as serde does;
 * - `"__metadata__": null` means no metadata; a repeated field is refused; a repeated
 *   tensor name keeps the last entry (a HashMap insert).
 *
 * Why not JSON.parse: a 100 MB header of 1.46M entries took 4 s and 1 GB in JSON.parse
 * and Object.entries alone; this single pass builds only the entries and is bounded by
 * an entry count limit checked as it goes.
 */

/** serde_json's default recursion limit: 128 nested containers are refused. */
export const MAX_JSON_DEPTH = 128;
/**
 * Tensor entries in one header: far more than any real checkpoint (the largest public
 * single files hold a few 10k), fewer than the 100 MB header size limit would allow
 * (~1.5M), so a hostile header is refused before it costs time and memory.
 */
export const MAX_SAFETENSORS_TENSORS = 1_000_000;

export interface RawEntry<Info = unknown> {
  name: string;
  dtype: string;
  /** The dtype's description, filled in by the caller (one object per entry, no copy). */
  info: Info;
  shape: number[];
  begin: number;
  end: number;
  /** Position in the header (ties of empty tensors keep header order). */
  index: number;
}

export interface RawHeader {
  entries: RawEntry[];
  /** `__metadata__` pairs, or undefined when absent or null. */
  metadata: [string, string][] | undefined;
}

/** A header that breaks a rule; `json` marks plain JSON syntax errors. */
export class HeaderSyntaxError extends Error {
  constructor(message: string, readonly json = false) {
    super(message);
  }
}

const METADATA_KEY = '__metadata__';

const enum C {
  TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20, QUOTE = 0x22, PLUS = 0x2b, COMMA = 0x2c, MINUS = 0x2d, DOT = 0x2e,
  ZERO = 0x30, NINE = 0x39, COLON = 0x3a, UPPER_E = 0x45, LBRACKET = 0x5b, BACKSLASH = 0x5c, RBRACKET = 0x5d,
  LOWER_E = 0x65, LBRACE = 0x7b, RBRACE = 0x7d,
}

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new HeaderSyntaxError(this.i >= this.s.length ? 'Unexpected end of JSON input' : `${what} at position ${this.i}`, true);
  }

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === C.SPACE || c === C.LF || c === C.CR || c === C.TAB) i++;
      else break;
    }
    this.i = i;
  }

  peek(): number {
    return this.s.charCodeAt(this.i);
  }

  expect(c: number, what: string): void {
    this.ws();
    if (this.s.charCodeAt(this.i) !== c) this.fail(`Expected ${what}`);
    this.i++;
  }

  string(): string {
    if (this.peek() !== C.QUOTE) this.fail('Expected a string');
    const s = this.s;
    let i = ++this.i;
    // Fast path: no escapes.
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === C.QUOTE) {
        const out = s.slice(this.i, i);
        this.i = i + 1;
        return out;
      }
      if (c === C.BACKSLASH) break;
      if (c < C.SPACE || Number.isNaN(c)) {
        this.i = i;
        this.fail(Number.isNaN(c) ? 'Unterminated string' : 'Bad control character in string literal');
      }
      i++;
    }
    let out = s.slice(this.i, i);
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === C.QUOTE) break;
      if (Number.isNaN(c)) {
        this.i = i;
        this.fail('Unterminated string');
      }
      if (c < C.SPACE) {
        this.i = i;
        this.fail('Bad control character in string literal');
      }
      if (c !== C.BACKSLASH) {
        out += s[i++];
        continue;
      }
      const e = s[i + 1];
      i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const u = this.hex4(i);
          i += 4;
          if (u >= 0xd800 && u <= 0xdbff) {
            // serde_json refuses a lone surrogate when it builds a String
            if (s[i] !== '\\' || s[i + 1] !== 'u') {
              this.i = i;
              this.fail('Lone leading surrogate in hex escape');
            }
            const v = this.hex4(i + 2);
            if (v < 0xdc00 || v > 0xdfff) {
              this.i = i;
              this.fail('Lone leading surrogate in hex escape');
            }
            i += 6;
            out += String.fromCharCode(u, v);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            this.i = i - 6;
            this.fail('Lone trailing surrogate in hex escape');
          } else out += String.fromCharCode(u);
          break;
        }
        default:
          this.i = i - 1;
          this.fail('Bad escaped character in JSON');
      }
    }
    this.i = i + 1;
    return out;
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.i = at;
      this.fail('Bad Unicode escape in JSON');
    }
    return parseInt(h, 16);
  }

  /** Set by number(): whether the last number was a JSON integer (no fraction or exponent). */
  integer = true;

  /** Reads a number; returns its value (exact for integers up to 2^53). */
  number(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    let integer = true;
    let v = 0;
    const neg = s.charCodeAt(i) === C.MINUS;
    if (neg) i++;
    const digits = () => {
      const from = i;
      for (let c = s.charCodeAt(i); c >= C.ZERO && c <= C.NINE; c = s.charCodeAt(++i)) v = v * 10 + (c - C.ZERO);
      if (i === from) {
        this.i = i;
        this.fail('No number after minus sign in JSON');
      }
    };
    if (s.charCodeAt(i) === C.ZERO) i++;
    else digits();
    const intEnd = i;
    if (s.charCodeAt(i) === C.DOT) {
      integer = false;
      i++;
      digits();
    }
    const e = s.charCodeAt(i);
    if (e === C.LOWER_E || e === C.UPPER_E) {
      integer = false;
      i++;
      const sign = s.charCodeAt(i);
      if (sign === C.PLUS || sign === C.MINUS) i++;
      digits();
    }
    this.i = i;
    this.integer = integer;
    // Long integers are summed inexactly above: re-read them (they are refused as sizes anyway).
    if (!integer || intEnd - start > 15) return Number(s.slice(start, i));
    return neg ? -v : v;
  }

  /** Skips any value (an unknown field), checking syntax and depth. */
  skip(depth: number): void {
    this.ws();
    const c = this.peek();
    if (c === C.QUOTE) this.string();
    else if (c === C.LBRACE || c === C.LBRACKET) {
      this.enter(depth + 1);
      const close = c === C.LBRACE ? C.RBRACE : C.RBRACKET;
      this.i++;
      this.ws();
      if (this.peek() === close) {
        this.i++;
        return;
      }
      for (;;) {
        if (close === C.RBRACE) {
          this.ws();
          this.string();
          this.expect(C.COLON, "':' after property name in JSON");
        }
        this.skip(depth + 1);
        this.ws();
        const n = this.peek();
        this.i++;
        if (n === close) return;
        if (n !== C.COMMA) {
          this.i--;
          this.fail(`Expected ',' or '${close === C.RBRACE ? '}' : ']'}'`);
        }
      }
    } else if (c === C.MINUS || (c >= C.ZERO && c <= C.NINE)) this.number();
    else this.literal();
  }

  literal(): 'true' | 'false' | 'null' {
    for (const w of ['true', 'false', 'null'] as const) {
      if (this.s.startsWith(w, this.i)) {
        this.i += w.length;
        return w;
      }
    }
    this.fail(`Unexpected token '${this.s[this.i]}'`);
  }

  enter(depth: number): void {
    if (depth >= MAX_JSON_DEPTH) throw new HeaderSyntaxError(`nested deeper than ${MAX_JSON_DEPTH - 1} levels at position ${this.i} (the reference reader's limit, serde_json's 128)`);
  }

  /** What the next value is, for messages (without consuming it). */
  kind(): string {
    this.ws();
    const c = this.peek();
    if (c === C.QUOTE) return 'string';
    if (c === C.LBRACKET) return 'a list';
    if (c === C.LBRACE) return 'object';
    if (c === C.MINUS || (c >= C.ZERO && c <= C.NINE)) return 'number';
    if (this.s.startsWith('null', this.i)) return 'null';
    if (this.s.startsWith('true', this.i) || this.s.startsWith('false', this.i)) return 'boolean';
    return this.fail(`Unexpected token '${this.s[this.i]}'`);
  }

  /** Iterates an object's members: calls `member(key)` positioned at each value. */
  object(depth: number, member: (key: string) => void): void {
    this.expect(C.LBRACE, "'{'");
    this.enter(depth);
    this.ws();
    if (this.peek() === C.RBRACE) {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      const key = this.string();
      this.expect(C.COLON, "':' after property name in JSON");
      member(key);
      this.ws();
      const n = this.peek();
      this.i++;
      if (n === C.RBRACE) return;
      if (n !== C.COMMA) {
        this.i--;
        this.fail("Expected ',' or '}' after property value in JSON");
      }
    }
  }

  /** A list of JSON integers >= 0 (usize); returns null when any item is not one (raw text in `raw`, only then). */
  sizes(depth: number): number[] | null {
    this.ws();
    const start = this.i;
    if (this.peek() !== C.LBRACKET) {
      this.skip(depth);
      this.raw = this.s.slice(start, this.i);
      return null;
    }
    this.enter(depth + 1);
    this.i++;
    let values: number[] | null = [];
    this.ws();
    if (this.peek() === C.RBRACKET) this.i++;
    else {
      for (;;) {
        this.ws();
        const c = this.peek();
        if (c === C.MINUS || (c >= C.ZERO && c <= C.NINE)) {
          const v = this.number();
          if (!this.integer || !Number.isSafeInteger(v) || v < 0) values = null;
          else values?.push(v === 0 ? 0 : v); // -0 is 0, as serde reads it
        } else {
          this.skip(depth + 1);
          values = null;
        }
        this.ws();
        const n = this.peek();
        this.i++;
        if (n === C.RBRACKET) break;
        if (n !== C.COMMA) {
          this.i--;
          this.fail("Expected ',' or ']' after array element in JSON");
        }
      }
    }
    if (!values) this.raw = this.s.slice(start, this.i);
    return values;
  }

  /** The text of the last list sizes() refused, for messages. */
  raw = '';
}

/** Field-level problems name the tensor; the caller adds the file. */
export class EntryError extends Error {}

function short(s: string): string {
  return s.length > 60 ? s.slice(0, 60) + '...' : s;
}

/**
 * Parses the header text. Throws HeaderSyntaxError (JSON syntax, depth, entry count) or
 * EntryError (a field that breaks the reference's types; message starts with the tensor).
 */
export function parseSafetensorsHeader(text: string): RawHeader {
  // Every entry names its data_offsets: more mentions than the limit and the header is
  // refused before anything is built (a native substring search, milliseconds for 100 MB).
  let mentions = 0;
  for (let at = text.indexOf('"data_offsets"'); at >= 0 && mentions <= MAX_SAFETENSORS_TENSORS; at = text.indexOf('"data_offsets"', at + 14)) mentions++;
  if (mentions > MAX_SAFETENSORS_TENSORS) throw tooMany();
  const p = new Parser(text);
  const entries: RawEntry[] = [];
  let metadata: [string, string][] | undefined;
  let sawMetadata = false;
  p.ws();
  if (p.peek() !== C.LBRACE) {
    throw new HeaderSyntaxError(`header must be a JSON object, found ${p.kind()}`);
  }
  let index = 0;
  p.object(1, (name) => {
    if (name === METADATA_KEY) {
      if (sawMetadata) throw new EntryError(`${METADATA_KEY} appears twice`);
      sawMetadata = true;
      metadata = parseMetadata(p);
      return;
    }
    if (entries.length >= MAX_SAFETENSORS_TENSORS) throw tooMany();
    entries.push(parseEntry(p, name, index++));
  });
  p.ws();
  if (p.i < text.length) p.fail('Unexpected non-whitespace character after JSON');
  return { entries, metadata };
}

function tooMany(): HeaderSyntaxError {
  return new HeaderSyntaxError(`more than ${MAX_SAFETENSORS_TENSORS.toLocaleString('en-US')} tensors (the limit on tensors per safetensors file)`);
}

function parseMetadata(p: Parser): [string, string][] | undefined {
  const kind = p.kind();
  if (kind === 'null') {
    p.literal();
    return undefined;
  }
  if (kind !== 'object') throw new EntryError(`${METADATA_KEY} must be an object of strings, found ${kind}`);
  const out = new Map<string, string>();
  p.object(2, (k) => {
    const kk = p.kind();
    if (kk !== 'string') throw new EntryError(`${METADATA_KEY}['${short(k)}'] must be a string, found ${kk}`);
    out.set(k, p.string());
  });
  return [...out];
}

function twice(name: string, field: string): EntryError {
  return new EntryError(`tensor '${short(name)}': field ${field} appears twice`);
}

function parseEntry(p: Parser, name: string, index: number): RawEntry {
  const kind = p.kind();
  if (kind !== 'object') throw new EntryError(`tensor '${short(name)}': expected {dtype, shape, data_offsets}, found ${kind}`);
  let dtype: string | undefined;
  let shape: number[] | null | undefined;
  let offsets: number[] | null | undefined;
  // p.object() inlined: this runs once per tensor, a closure each time showed in profiles
  p.expect(C.LBRACE, "'{'");
  p.enter(2);
  p.ws();
  if (p.peek() === C.RBRACE) p.i++;
  else {
    for (;;) {
      p.ws();
      const field = p.string();
      p.expect(C.COLON, "':' after property name in JSON");
      if (field === 'dtype') {
        if (dtype !== undefined) throw twice(name, field);
        const k = p.kind();
        if (k !== 'string') throw new EntryError(`tensor '${short(name)}': dtype must be a string, found ${k}`);
        dtype = p.string();
      } else if (field === 'shape') {
        if (shape !== undefined) throw twice(name, field);
        shape = p.sizes(2);
        if (!shape) throw new EntryError(`tensor '${short(name)}': shape must be a list of non-negative integers, found ${short(p.raw)}`);
      } else if (field === 'data_offsets') {
        if (offsets !== undefined) throw twice(name, field);
        offsets = p.sizes(2);
        if (!offsets || offsets.length !== 2) throw new EntryError(`tensor '${short(name)}': data_offsets must be [begin, end] with non-negative integers, found ${short(offsets ? JSON.stringify(offsets) : p.raw)}`);
      } else p.skip(2); // unknown fields are ignored, as serde does
      p.ws();
      const n = p.peek();
      p.i++;
      if (n === C.RBRACE) break;
      if (n !== C.COMMA) {
        p.i--;
        p.fail("Expected ',' or '}' after property value in JSON");
      }
    }
  }
  const at = `tensor '${short(name)}'`;
  if (dtype === undefined) throw new EntryError(`${at}: missing field dtype`);
  if (!shape) throw new EntryError(`${at}: missing field shape`);
  if (!offsets) throw new EntryError(`${at}: missing field data_offsets`);
  return { name, dtype, info: null, shape, begin: offsets[0]!, end: offsets[1]!, index };
}

/** The JSON syntax (or depth) error in `text`, if any: the whole text checked as one value. */
export function jsonSyntaxError(text: string): string | undefined {
  const p = new Parser(text);
  try {
    p.skip(0);
    p.ws();
    if (p.i < text.length) p.fail('Unexpected non-whitespace character after JSON');
    return undefined;
  } catch (e) {
    if (e instanceof HeaderSyntaxError) return e.message;
    throw e;
  }
}
