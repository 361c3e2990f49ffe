// The storefront (docs/contract.md §8): the shopper's app, served by the Worker at `/`.
import { startShop } from './app.ts';

startShop(document.body);
