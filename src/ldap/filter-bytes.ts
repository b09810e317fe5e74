/**
 * ldapts filter classes that carry exact bytes. ldapts's Equality filter takes a Buffer; its
 * >=, <=, ~=, substring and extensible filters only take JS strings and UTF-8 encode them, so
 * these subclasses keep the bytes and write them as they are (the parser in filter.ts makes
 * them). The inherited string fields hold a readable (UTF-8 decoded) form only; toString()
 * gives an exact RFC 4515 form.
 */
import {
  ApproximateFilter,
  type BerWriter,
  EqualityFilter,
  ExtensibleFilter,
  GreaterThanEqualsFilter,
  LessThanEqualsFilter,
  SubstringFilter,
} from 'ldapts';

const OCTET_STRING = 0x04;
const SUB_INITIAL = 0x80;
const SUB_ANY = 0x81;
const SUB_FINAL = 0x82;
const EXT_RULE = 0x81;
const EXT_TYPE = 0x82;
const EXT_VALUE = 0x83;
const EXT_DNATTRS = 0x84;

const HEX = '0123456789abcdef';

/** RFC 4515 form of a value: printable ASCII as is, everything else and `( ) * \` as \xx. */
function showValue(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c > 0x7e || c === 0x28 || c === 0x29 || c === 0x2a || c === 0x5c) {
      s += '\\' + HEX[c >> 4]! + HEX[c & 15]!;
    } else {
      s += String.fromCharCode(c);
    }
  }
  return s;
}

/**
 * The ldapts classes of the four attribute-value assertions, seen as one: ldapts types each with
 * its own `type` tag, so they are alike but not assignable to each other (hence the casts below).
 */
type AssertionClass = new (options: { attribute: string; value: string }) => EqualityFilter;

/**
 * One of the four attribute-value assertions (`=`, `>=`, `<=`, `~=`) with its value as bytes:
 * the same BER body for all four, under the tag the ldapts base class writes.
 */
function assertionWithBytes<B extends AssertionClass>(Base: B, operator: string) {
  return class extends (Base as AssertionClass) {
    readonly bytes: Buffer;

    constructor(attribute: string, bytes: Buffer) {
      super({ attribute, value: bytes.toString('utf8') });
      this.bytes = bytes;
    }

    override writeFilter(writer: BerWriter): void {
      writer.writeString(this.attribute);
      writer.writeBuffer(this.bytes, OCTET_STRING);
    }

    override toString(): string {
      return `(${this.attribute}${operator}${showValue(this.bytes)})`;
    }
  };
}

export const BytesEqualityFilter = assertionWithBytes(EqualityFilter as unknown as AssertionClass, '=');
export type BytesEqualityFilter = InstanceType<typeof BytesEqualityFilter>;
export const BytesGreaterThanEqualsFilter = assertionWithBytes(GreaterThanEqualsFilter as unknown as AssertionClass, '>=');
export type BytesGreaterThanEqualsFilter = InstanceType<typeof BytesGreaterThanEqualsFilter>;
export const BytesLessThanEqualsFilter = assertionWithBytes(LessThanEqualsFilter as unknown as AssertionClass, '<=');
export type BytesLessThanEqualsFilter = InstanceType<typeof BytesLessThanEqualsFilter>;
export const BytesApproximateFilter = assertionWithBytes(ApproximateFilter as unknown as AssertionClass, '~=');
export type BytesApproximateFilter = InstanceType<typeof BytesApproximateFilter>;

export class BytesSubstringFilter extends SubstringFilter {
  constructor(
    attribute: string,
    readonly initialBytes: Buffer | undefined,
    readonly anyBytes: Buffer[],
    readonly finalBytes: Buffer | undefined,
  ) {
    super({
      attribute,
      initial: initialBytes?.toString('utf8') ?? '',
      any: anyBytes.map((b) => b.toString('utf8')),
      final: finalBytes?.toString('utf8') ?? '',
    });
  }

  override writeFilter(writer: BerWriter): void {
    writer.writeString(this.attribute);
    writer.startSequence();
    if (this.initialBytes) writer.writeBuffer(this.initialBytes, SUB_INITIAL);
    for (const b of this.anyBytes) writer.writeBuffer(b, SUB_ANY);
    if (this.finalBytes) writer.writeBuffer(this.finalBytes, SUB_FINAL);
    writer.endSequence();
  }

  override toString(): string {
    let s = `(${this.attribute}=`;
    if (this.initialBytes) s += showValue(this.initialBytes);
    s += '*';
    for (const b of this.anyBytes) s += showValue(b) + '*';
    if (this.finalBytes) s += showValue(this.finalBytes);
    return s + ')';
  }
}

export class BytesExtensibleFilter extends ExtensibleFilter {
  constructor(
    /** Attribute description, '' when absent. */
    attribute: string,
    /** Matching rule, '' when absent. */
    rule: string,
    dnAttributes: boolean,
    readonly bytes: Buffer,
  ) {
    super({ matchType: attribute, rule, dnAttributes, value: bytes.toString('utf8') });
  }

  override writeFilter(writer: BerWriter): void {
    if (this.rule) writer.writeString(this.rule, EXT_RULE);
    if (this.matchType) writer.writeString(this.matchType, EXT_TYPE);
    writer.writeBuffer(this.bytes, EXT_VALUE);
    if (this.dnAttributes) writer.writeBoolean(true, EXT_DNATTRS);
  }

  override toString(): string {
    let s = '(' + this.matchType;
    if (this.dnAttributes) s += ':dn';
    if (this.rule) s += ':' + this.rule;
    return s + ':=' + showValue(this.bytes) + ')';
  }
}
