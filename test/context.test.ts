import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCKERFILE_NAME, renderContext } from '../src/context.js';
import { loadProfile } from '../src/profiles.js';
import { CREDENTIAL_RULES_PATH, profileValues } from '../src/render.js';

describe('renderContext', () => {
  it('renders the Dockerfile and the image files with the profile values, and cleans up after itself', async () => {
    const context = await renderContext(profileValues(loadProfile('ubuntu-16.04')), undefined);
    try {
      const dockerfile = readFileSync(join(context.dir, DOCKERFILE_NAME), 'utf8');
      expect(dockerfile).toContain('FROM ubuntu:16.04 AS os');
      expect(dockerfile).not.toMatch(/\{\{[A-Z_]+\}\}/);
      const rules = readFileSync(join(context.dir, 'image-files', CREDENTIAL_RULES_PATH), 'utf8');
      expect(rules).toContain('users_file_problem()');
    } finally {
      await context.dispose();
    }
    expect(existsSync(context.dir)).toBe(false);
  });

  it('refuses a value no template uses (the template and the profile drifted apart)', async () => {
    await expect(renderContext({ ...profileValues(loadProfile('debian-12')), NOT_IN_ANY_TEMPLATE: 'x' }, undefined)).rejects.toThrow(/never used: NOT_IN_ANY_TEMPLATE/);
  });
});
