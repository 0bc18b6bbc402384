/** New DICOM UIDs: 2.25.<decimal of a random 128-bit UUID> (ISO/IEC 9834-8, DICOM PS3.5 B.2). */
import { randomUUID } from 'node:crypto';

export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}
