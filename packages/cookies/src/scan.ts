export const scanPlaceholder = true;
