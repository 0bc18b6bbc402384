/**
 * Transfer syntaxes: what each UID is called and how its pixel data are encoded, so that the
 * parser knows the byte order / VR encoding and the pixel reader knows which codec to use.
 * Anything not listed as supported is refused with its UID and name.
 */

export type PixelEncoding =
  | 'native' // uncompressed, pixel data in place
  | 'jpeg2000'
  | 'jpegls'
  | 'jpeg-lossless'
  | 'jpeg-baseline'
  | 'rle'
  | 'unsupported';

export interface TransferSyntax {
  uid: string;
  name: string;
  explicitVr: boolean;
  littleEndian: boolean;
  /** The data set after the file meta group is deflate-compressed. */
  deflated: boolean;
  encoding: PixelEncoding;
}

export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const EXPLICIT_VR_BE = '1.2.840.10008.1.2.2';
export const DEFLATED_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1.99';

const TABLE: Array<[string, string, PixelEncoding]> = [
  [IMPLICIT_VR_LE, 'Implicit VR Little Endian', 'native'],
  [EXPLICIT_VR_LE, 'Explicit VR Little Endian', 'native'],
  [EXPLICIT_VR_BE, 'Explicit VR Big Endian (retired)', 'native'],
  [DEFLATED_EXPLICIT_VR_LE, 'Deflated Explicit VR Little Endian', 'native'],
  ['1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)', 'jpeg-baseline'],
  ['1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)', 'jpeg-baseline'],
  ['1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)', 'jpeg-lossless'],
  [
    '1.2.840.10008.1.2.4.70',
    'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
    'jpeg-lossless',
  ],
  ['1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless', 'jpegls'],
  ['1.2.840.10008.1.2.4.81', 'JPEG-LS Lossy (Near-Lossless)', 'jpegls'],
  ['1.2.840.10008.1.2.4.90', 'JPEG 2000 Image Compression (Lossless Only)', 'jpeg2000'],
  ['1.2.840.10008.1.2.4.91', 'JPEG 2000 Image Compression', 'jpeg2000'],
  ['1.2.840.10008.1.2.5', 'RLE Lossless', 'rle'],
  // Known but not supported: refused with their names.
  ['1.2.840.10008.1.2.4.52', 'JPEG Extended (Process 3 & 5) (retired)', 'unsupported'],
  ['1.2.840.10008.1.2.4.53', 'JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (retired)', 'unsupported'],
  ['1.2.840.10008.1.2.4.55', 'JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (retired)', 'unsupported'],
  ['1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)', 'unsupported'],
  ['1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component Image Compression', 'unsupported'],
  ['1.2.840.10008.1.2.4.94', 'JPIP Referenced', 'unsupported'],
  ['1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate', 'unsupported'],
  ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level', 'unsupported'],
  ['1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', 'unsupported'],
  ['1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 Image Compression (Lossless Only)', 'unsupported'],
  [
    '1.2.840.10008.1.2.4.202',
    'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)',
    'unsupported',
  ],
  ['1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000 Image Compression', 'unsupported'],
  ['1.2.840.10008.1.2.6.1', 'RFC 2557 MIME encapsulation (retired)', 'unsupported'],
];

const BY_UID = new Map(TABLE.map(([uid, name, encoding]) => [uid, { name, encoding }]));

/** Information about a transfer syntax UID (unknown UIDs come back as 'unsupported'). */
export function transferSyntax(uid: string): TransferSyntax {
  const known = BY_UID.get(uid);
  const encoding = known?.encoding ?? 'unsupported';
  return {
    uid,
    name: known?.name ?? 'unknown transfer syntax',
    explicitVr: uid !== IMPLICIT_VR_LE,
    littleEndian: uid !== EXPLICIT_VR_BE,
    deflated: uid === DEFLATED_EXPLICIT_VR_LE,
    encoding,
  };
}

/** "1.2.840.10008.1.2.4.90 (JPEG 2000 Image Compression (Lossless Only))" */
export function describeTransferSyntax(uid: string): string {
  return `${uid} (${transferSyntax(uid).name})`;
}
