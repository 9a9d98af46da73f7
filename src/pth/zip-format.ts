/** The zip format's fixed numbers (APPNOTE.TXT), shared by the reader and the writer. */
export const SIG = {
  LOCAL: 0x04034b50,
  CENTRAL: 0x02014b50,
  END: 0x06054b50,
  ZIP64_END: 0x06064b50,
  ZIP64_LOCATOR: 0x07064b50,
} as const;

/** Extra-field id holding 64-bit sizes and offsets. */
export const EXTRA_ZIP64 = 0x0001;
export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const END_SIZE = 22;
export const ZIP64_LOCATOR_SIZE = 20;
export const ZIP64_END_SIZE = 56;
export const U32_MAX = 0xffffffff;
export const U16_MAX = 0xffff;
