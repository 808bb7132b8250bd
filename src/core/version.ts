/** Tool name and version, as written into every reproducibility record. Kept in step with package.json by a unit test. */
export const TOOL_NAME = 'awd-merge';
export const TOOL_VERSION = '0.2.0';
