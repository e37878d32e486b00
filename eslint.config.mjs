// Lint gate (npm run lint, run by npm test): typescript-eslint's type-aware recommended rules, plus a
// 120-column limit on the comments prettier does not wrap. Layout is prettier's job (.prettierrc.json);
// nothing here argues with it.
import stylistic from '@stylistic/eslint-plugin'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', 'coverage/**', '.tap/**', '.devdist/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@stylistic': stylistic },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Messages stay whole on one line, so a fragment pasted from a user's terminal greps to its source.
      '@stylistic/max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true },
      ],
    },
  },
  {
    // Lazy loads, on purpose: commands and the daemon load only when they run (start-up time, twice per
    // mount), and native addons (lzma-native, the FUSE binding) only where they are used, so a missing one
    // fails with its own clear error. import() would go through the slower ESM loader.
    files: [
      'src/cli.ts',
      'src/commands/mount.ts',
      'src/pack/from-kheaders.ts',
      'src/native/binding.ts',
      'src/serve/reclaim.ts',
      'src/xz/block.ts',
      'src/xz/crc32.ts',
    ],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // tap's idiom: t.test() returns a promise tap itself awaits, and async callbacks without an await
    // keep every subtest's signature alike.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/require-await': 'off' },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  // Plain CommonJS scripts (packaging/deb-meta.js) load with require().
  { files: ['**/*.js'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
)
