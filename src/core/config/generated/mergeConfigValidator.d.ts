// Types of the standalone validator that scripts/build-schema-validator.mjs generates beside this file.
import type { ValidateFunction } from 'ajv';

declare const validate: ValidateFunction;
export default validate;
