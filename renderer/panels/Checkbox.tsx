/** A labelled checkbox of the side panels: the box, then its label text; `title` is the hover help. */
import type { ReactNode } from 'react';

export function Checkbox(props: {
  testId: string;
  checked: boolean;
  disabled?: boolean;
  title?: string;
  onChange: (checked: boolean) => void;
  children: ReactNode;
}) {
  return (
    <label title={props.title}>
      <input
        data-testid={props.testId}
        type="checkbox"
        disabled={props.disabled}
        checked={props.checked}
        onChange={(e) => props.onChange(e.target.checked)}
      />{' '}
      {props.children}
    </label>
  );
}
