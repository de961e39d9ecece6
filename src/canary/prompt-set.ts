/**
 * The canary's fixed prompts: a dozen, varied in what they make a model do (count, list, recall
 * facts, write code, follow a format, continue prose, reason step by step) and in length, so that
 * their greedy continuations have both confident stretches (where a change of token under load
 * means something) and open ones. Fixed text, fixed order: the same prompts give comparable runs
 * from one canary to the next. Each works as a completion prompt and as a chat message.
 */
export interface CanaryPrompt {
  /** A short stable name, shown per line of the report. */
  id: string;
  prompt: string;
}

export const CANARY_PROMPTS: readonly CanaryPrompt[] = [
  { id: 'count-words', prompt: 'Write the numbers from one to twenty in words, separated by commas: one, two,' },
  { id: 'alphabet', prompt: 'The letters of the English alphabet in order, separated by spaces: A B C' },
  { id: 'capitals', prompt: 'List the capital cities of these countries, one per line as "country: capital".\nFrance: Paris\nJapan:' },
  { id: 'python-function', prompt: 'Write a Python function is_prime(n) that returns True when n is a prime number.\n\ndef is_prime(n):' },
  { id: 'json-record', prompt: 'Return a JSON object describing a book with the keys "title", "author", "year" and "pages" for George Orwell\'s novel 1984:\n{"title": "1984",' },
  { id: 'arithmetic-steps', prompt: 'Compute 17 * 23 step by step. First, 17 * 20 = 340. Then, 17 * 3 =' },
  { id: 'recipe', prompt: 'A simple recipe for pancakes. Ingredients: 1 cup of flour, 1 egg,' },
  { id: 'story-opening', prompt: 'Continue the story in plain English. The lighthouse keeper climbed the stairs for the last time that winter, and when she reached the lamp room she saw' },
  { id: 'definition', prompt: 'In one paragraph, explain what a hash function is and why it is useful in computer science. A hash function is' },
  { id: 'translation', prompt: 'Translate into French: "The weather is nice today, so we will walk to the market and buy bread." French:' },
  { id: 'days-months', prompt: 'The days of the week are Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday. The months of the year are January, February,' },
  {
    id: 'long-context',
    prompt:
      'Read the log and answer the question.\n' +
      '2024-03-01 02:14:07 worker-3 started request 8812 (prompt 1840 tokens)\n' +
      '2024-03-01 02:14:09 worker-1 finished request 8809 (412 tokens generated)\n' +
      '2024-03-01 02:14:11 worker-3 preempted request 8812 (KV cache full, 97% in use)\n' +
      '2024-03-01 02:14:12 worker-2 started request 8815 (prompt 96 tokens)\n' +
      '2024-03-01 02:14:15 worker-3 resumed request 8812\n' +
      '2024-03-01 02:14:19 worker-3 finished request 8812 (233 tokens generated)\n' +
      'Question: which request was preempted, why, and when did it finish? Answer: Request',
  },
];
