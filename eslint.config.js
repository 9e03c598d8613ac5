import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, filesTs: ['**/*.cts', '**/*.mts'], ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', '.tmp/**', 'bench/.tmp/**'] }),
  {
    files: ['**/*.ts', '**/*.cts', '**/*.mts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error'
    }
  }
]
