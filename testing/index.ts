/** Test harnesses for Entrepot's integration tests; see docs/testing.md. */
export * from './tools';
export * from './upstream-registry';
export * from './oci-images';
export * from './s3-server';
export * from './containers';
