// Issue 11, point 12: the README has a table of contents that matches its headings, and its Quick
// start says what a newcomer needs before the first run.
import t from 'tap'
import { readFile } from 'node:fs/promises'

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
// headings outside code blocks
const prose = readme.replace(/```[\s\S]*?```/g, '')
const headings = [...prose.matchAll(/^(#{2,3}) (.+)$/gm)]
  .map(([, level, title]) => ({ level: level.length, title }))
  .filter(({ title }) => title !== 'Contents')

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchor = (title: string): string => title.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')

t.test('the table of contents lists every section and subsection, in order, with working links', async (t) => {
  const contents = /^## Contents\n\n((?:\s*- .+\n)+)/m.exec(readme)
  t.ok(contents, 'a "## Contents" list')
  const entries = [...(contents?.[1] ?? '').matchAll(/^( *)- \[(.+)\]\(#(.+)\)$/gm)]
    .map(([, indent, title, link]) => ({ level: indent.length / 2 + 2, title, link }))
  t.same(entries, headings.map(({ level, title }) => ({ level, title, link: anchor(title) })))
})

t.test('the Quick start says that Redis must be running and SESSION_SECRET set', async (t) => {
  const quickStart = /^## Quick start\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? ''
  t.match(quickStart, /Redis must be running|a running Redis/i)
  t.match(quickStart, 'SESSION_SECRET')
})
