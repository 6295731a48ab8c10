// The client moved to lib/ (shared with the bench); this path stays for the integration files.
export * from '../../lib/binary-client.js';
