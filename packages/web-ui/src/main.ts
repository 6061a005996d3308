import { App } from './app/app';
import './styles.css';

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');
new App(root).start();
