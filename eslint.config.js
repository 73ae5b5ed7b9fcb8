// Lint rules: typescript-eslint's recommended set, plus the few rules that protect our contracts.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'src/gen/**', '.scratch/**', 'bench/routing/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'Do not commit .only tests.' },
        { object: 'it', property: 'only', message: 'Do not commit .only tests.' },
        { object: 'test', property: 'only', message: 'Do not commit .only tests.' },
      ],
    },
  },
);
