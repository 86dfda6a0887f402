#!/usr/bin/env node
console.log('privacykit: under construction');
