# sqlcached container image. Build: docker build -t sqlcached .
# Run next to a database reachable as `postgres` (compose service name):
#   docker run -p 6432:6432 -p 6033:6033 -p 9090:9090 sqlcached
# config/docker.yaml listens on 0.0.0.0 and points at postgres:5432; mount
# another file and pass --config to change it.

# --- build: compile TypeScript with the dev dependencies --------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, compiled code, configs ---------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# Files stay owned by root: the proxy reads them and never writes.
USER node
EXPOSE 6432 6033 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node handles SIGTERM itself (graceful stop, exit 0): no init wrapper needed.
CMD ["node", "--max-semi-space-size=4", "dist/cli.js", "--config", "config/docker.yaml"]
