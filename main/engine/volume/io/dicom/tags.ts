/**
 * The DICOM tags the reader uses, as 32-bit numbers (group << 16 | element), with the VR of each
 * so that values can be decoded in Implicit VR files (where the file does not say the VR).
 * Only what the reader needs is here; everything else is skipped by length.
 */

export const tag = (group: number, element: number): number => ((group << 16) | element) >>> 0;

export const T = {
  // file meta
  TransferSyntaxUID: tag(0x0002, 0x0010),
  // patient / study / series / instance
  SpecificCharacterSet: tag(0x0008, 0x0005),
  ImageType: tag(0x0008, 0x0008),
  SOPClassUID: tag(0x0008, 0x0016),
  SOPInstanceUID: tag(0x0008, 0x0018),
  Modality: tag(0x0008, 0x0060),
  SeriesDescription: tag(0x0008, 0x103e),
  SliceThickness: tag(0x0018, 0x0050),
  SpacingBetweenSlices: tag(0x0018, 0x0088),
  GantryDetectorTilt: tag(0x0018, 0x1120),
  ImagerPixelSpacing: tag(0x0018, 0x1164),
  StudyInstanceUID: tag(0x0020, 0x000d),
  SeriesInstanceUID: tag(0x0020, 0x000e),
  SeriesNumber: tag(0x0020, 0x0011),
  AcquisitionNumber: tag(0x0020, 0x0012),
  InstanceNumber: tag(0x0020, 0x0013),
  ImagePositionPatient: tag(0x0020, 0x0032),
  ImageOrientationPatient: tag(0x0020, 0x0037),
  FrameOfReferenceUID: tag(0x0020, 0x0052),
  // image pixel
  SamplesPerPixel: tag(0x0028, 0x0002),
  PhotometricInterpretation: tag(0x0028, 0x0004),
  PlanarConfiguration: tag(0x0028, 0x0006),
  NumberOfFrames: tag(0x0028, 0x0008),
  Rows: tag(0x0028, 0x0010),
  Columns: tag(0x0028, 0x0011),
  PixelSpacing: tag(0x0028, 0x0030),
  BitsAllocated: tag(0x0028, 0x0100),
  BitsStored: tag(0x0028, 0x0101),
  HighBit: tag(0x0028, 0x0102),
  PixelRepresentation: tag(0x0028, 0x0103),
  RescaleIntercept: tag(0x0028, 0x1052),
  RescaleSlope: tag(0x0028, 0x1053),
  GridFrameOffsetVector: tag(0x3004, 0x000c),
  PixelData: tag(0x7fe0, 0x0010),
  // multi-frame functional groups
  SharedFunctionalGroupsSequence: tag(0x5200, 0x9229),
  PerFrameFunctionalGroupsSequence: tag(0x5200, 0x9230),
  FrameContentSequence: tag(0x0020, 0x9111),
  PlanePositionSequence: tag(0x0020, 0x9113),
  PlaneOrientationSequence: tag(0x0020, 0x9116),
  PixelMeasuresSequence: tag(0x0028, 0x9110),
  PixelValueTransformationSequence: tag(0x0028, 0x9145),
  StackID: tag(0x0020, 0x9056),
  TemporalPositionIndex: tag(0x0020, 0x9128),
  // item and delimiters
  Item: tag(0xfffe, 0xe000),
  ItemDelimitation: tag(0xfffe, 0xe00d),
  SequenceDelimitation: tag(0xfffe, 0xe0dd),
} as const;

/** VRs of the tags above, for Implicit VR Little Endian files. */
export const IMPLICIT_VR = new Map<number, string>([
  [T.TransferSyntaxUID, 'UI'],
  [T.SpecificCharacterSet, 'CS'],
  [T.ImageType, 'CS'],
  [T.SOPClassUID, 'UI'],
  [T.SOPInstanceUID, 'UI'],
  [T.Modality, 'CS'],
  [T.SeriesDescription, 'LO'],
  [T.SliceThickness, 'DS'],
  [T.SpacingBetweenSlices, 'DS'],
  [T.GantryDetectorTilt, 'DS'],
  [T.ImagerPixelSpacing, 'DS'],
  [T.StudyInstanceUID, 'UI'],
  [T.SeriesInstanceUID, 'UI'],
  [T.SeriesNumber, 'IS'],
  [T.AcquisitionNumber, 'IS'],
  [T.InstanceNumber, 'IS'],
  [T.ImagePositionPatient, 'DS'],
  [T.ImageOrientationPatient, 'DS'],
  [T.FrameOfReferenceUID, 'UI'],
  [T.SamplesPerPixel, 'US'],
  [T.PhotometricInterpretation, 'CS'],
  [T.PlanarConfiguration, 'US'],
  [T.NumberOfFrames, 'IS'],
  [T.Rows, 'US'],
  [T.Columns, 'US'],
  [T.PixelSpacing, 'DS'],
  [T.BitsAllocated, 'US'],
  [T.BitsStored, 'US'],
  [T.HighBit, 'US'],
  [T.PixelRepresentation, 'US'],
  [T.RescaleIntercept, 'DS'],
  [T.RescaleSlope, 'DS'],
  [T.GridFrameOffsetVector, 'DS'],
  [T.PixelData, 'OW'],
  [T.SharedFunctionalGroupsSequence, 'SQ'],
  [T.PerFrameFunctionalGroupsSequence, 'SQ'],
  [T.FrameContentSequence, 'SQ'],
  [T.PlanePositionSequence, 'SQ'],
  [T.PlaneOrientationSequence, 'SQ'],
  [T.PixelMeasuresSequence, 'SQ'],
  [T.PixelValueTransformationSequence, 'SQ'],
  [T.StackID, 'SH'],
  [T.TemporalPositionIndex, 'UL'],
]);

/**
 * Sequences whose items the reader needs (multi-frame functional groups). Other sequences of
 * defined length are skipped by length without being parsed, so a broken private sequence does
 * not stop the reading.
 */
export const PARSED_SEQUENCES = new Set<number>([
  T.SharedFunctionalGroupsSequence,
  T.PerFrameFunctionalGroupsSequence,
  T.FrameContentSequence,
  T.PlanePositionSequence,
  T.PlaneOrientationSequence,
  T.PixelMeasuresSequence,
  T.PixelValueTransformationSequence,
]);

export function tagString(t: number): string {
  const h = t.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
