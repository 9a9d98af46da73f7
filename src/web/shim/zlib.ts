/** The browser build's `node:zlib`: no native crc32, so util/crc32.ts uses its table. */
export const crc32 = undefined;
export default {};
