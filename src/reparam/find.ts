/** Moved: the 2021 blocks' key patterns are part of the family description (family/blocks2021). */
export * from '../family/blocks2021/find.js';
