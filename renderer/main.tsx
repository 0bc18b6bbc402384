/** Renderer entry: mounts the React application. */
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import './styles.css';
import './views/registry.ts';

createRoot(document.getElementById('root')!).render(<App />);
