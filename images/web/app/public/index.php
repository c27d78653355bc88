<?php
// Reference app of the harness. Every answer names the node that served it (X-Served-By), so the
// client side can see ejection and failover; sessions use whatever save_handler PHP is given.
declare(strict_types=1);

$node = getenv('NODE_NAME') ?: gethostname();
header('X-Served-By: ' . $node);
header('Cache-Control: no-store');

function reply(int $code, array $body): never {
    http_response_code($code);
    header('Content-Type: application/json');
    echo json_encode($body), "\n";
    exit;
}

function db(): PDO {
    static $pdo = null;
    if ($pdo === null) {
        $pdo = new PDO(
            sprintf('mysql:host=%s;port=%s;dbname=%s', getenv('DB_HOST'), getenv('DB_PORT') ?: '3306', getenv('DB_NAME') ?: 'app'),
            getenv('DB_USER') ?: 'app',
            getenv('DB_PASSWORD') ?: '',
            [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => (int)(getenv('DB_TIMEOUT') ?: 5)]
        );
    }
    return $pdo;
}

/** Whether the session store holds session $id: null when it cannot be asked. */
function store_has(string $id): ?bool {
    if (ini_get('session.save_handler') !== 'redis') {
        return false;  // files: the store is this node's disk, and PHP just looked
    }
    try {
        $r = new Redis();
        if (!$r->connect(getenv('REDIS_HOST'), (int)(getenv('REDIS_PORT') ?: 6379), 1.0)) {
            return null;
        }
        if (getenv('REDIS_PASSWORD') && $r->auth(getenv('REDIS_PASSWORD')) !== true) {
            return null;
        }
        // only a count is an answer: phpredis returns false when the server answered an error
        $n = $r->exists('PHPREDIS_SESSION:' . $id);
        if (!is_int($n)) {
            error_log('session store answered EXISTS with ' . var_export($n, true) . ': ' . (string)$r->getLastError());
            return null;
        }
        return $n > 0;
    } catch (Throwable $e) {
        return null;
    }
}

/**
 * The connection for reads of a user's own data, and where it goes ('replica' or 'primary').
 * DB_READ_HOSTS (host:port,...; set by the harness from the topology's `db_reads: replicas`)
 * lists the replicas: one is picked per request, and the primary serves the read when none is
 * given or the picked one cannot be reached (the usual read/write split: writes always go to
 * DB_HOST). A replica may not have applied the client's latest write yet: a stale read.
 */
function db_read(): array {
    $hosts = array_values(array_filter(explode(',', getenv('DB_READ_HOSTS') ?: '')));
    if ($hosts) {
        [$host, $port] = array_pad(explode(':', $hosts[array_rand($hosts)], 2), 2, '3306');
        try {
            $pdo = new PDO(
                sprintf('mysql:host=%s;port=%s;dbname=%s', $host, $port, getenv('DB_NAME') ?: 'app'),
                getenv('DB_USER') ?: 'app',
                getenv('DB_PASSWORD') ?: '',
                [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 1]
            );
            return [$pdo, 'replica'];
        } catch (PDOException $e) {
            error_log("read host $host:$port unreachable, reading from the primary: " . $e->getMessage());
        }
    }
    return [db(), 'primary'];
}

function input(): array {
    $raw = file_get_contents('php://input');
    $json = json_decode($raw ?: '', true);
    return is_array($json) ? $json : $_POST;
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';

// Only a login hands out a session cookie. Any other answer drops one: when the store cannot
// confirm a session id (a failover), PHP's strict mode makes a new one, and an error thrown
// mid-read (RedisException) answers 503 with it; the client's good cookie would be replaced
// and its session lost for good once the store is back.
header_register_callback(function () use ($method, $path): void {
    if ("$method $path" === 'POST /login') {
        return;
    }
    foreach (headers_list() as $h) {
        if (stripos($h, 'Set-Cookie:') === 0) {
            error_log("dropped a cookie on $method $path (" . http_response_code() . "): $h");
            header_remove('Set-Cookie');
        }
    }
});

try {
    // GET /orders/{id}: read an order back through the read path (see db_read); 404 until the
    // server read from has it, which on a lagging replica is a stale read of the client's write.
    if ($method === 'GET' && preg_match('#^/orders/([A-Za-z0-9_-]{1,64})$#', (string)$path, $m)) {
        [$pdo, $from] = db_read();
        header('X-DB-Read: ' . $from);
        $stmt = $pdo->prepare('SELECT id, item, node FROM orders WHERE id = ?');
        $stmt->execute([$m[1]]);
        $row = $stmt->fetch(PDO::FETCH_ASSOC);
        if ($row === false) {
            reply(404, ['error' => 'order not found', 'id' => $m[1], 'read_from' => $from]);
        }
        reply(200, $row + ['read_from' => $from]);
    }
    // POST /session: a session write (the session gets a new `touched` time), answered 200 only
    // once the store took it, so the client sees when session writes work again after a store
    // failover. Never writes under a new id: 401 when the store answers without the session
    // (lost), 503 when it cannot be asked or did not take the write.
    if ("$method $path" === 'POST /session') {
        $cookie = (string)($_COOKIE[session_name()] ?? '');
        if ($cookie === '') {
            reply(401, ['error' => 'no session cookie']);
        }
        if (!session_start()) {
            reply(503, ['error' => 'session store unavailable']);
        }
        $confirmed = session_id() === $cookie;  // strict mode made a new id when it was not
        if (!$confirmed || !isset($_SESSION['user'])) {
            session_abort();
            if (!$confirmed && store_has($cookie) !== false) {
                reply(503, ['error' => 'session store could not confirm the session']);
            }
            error_log('lost session on write: the store has no session ' . $cookie);
            reply(401, ['error' => 'session not found']);
        }
        $_SESSION['touched'] = microtime(true);
        if (!session_write_close()) {
            reply(503, ['error' => 'session store did not take the write']);
        }
        reply(200, ['user' => $_SESSION['user'], 'node' => $node]);
    }
    switch ("$method $path") {
        case 'GET /health/live':
            // Liveness: this PHP process answers; no dependency is asked, so a slow database
            // cannot make an LB eject every node at once. The web node serves it from a small
            // PHP-FPM pool of its own (pool.d/health.conf), so it never queues behind traffic.
            reply(200, ['status' => 'live', 'node' => $node]);
        case 'GET /health/ready':  // readiness: every dependency answers (what /health always did)
        case 'GET /health':
            $checks = array_filter(explode(',', getenv('HEALTH_CHECKS') ?: 'db'));
            if (in_array('redis', $checks, true)) {
                $r = new Redis();
                $r->connect(getenv('REDIS_HOST'), (int)(getenv('REDIS_PORT') ?: 6379), 1.0);
                if (getenv('REDIS_PASSWORD')) { $r->auth(getenv('REDIS_PASSWORD')); }
                $r->ping();
            }
            if (in_array('db', $checks, true)) {
                db()->query('SELECT 1');
            }
            reply(200, ['status' => 'ok', 'node' => $node]);
        case 'GET /work':
            // Holds this worker for ?ms= milliseconds (0-10000, default 100), like a request
            // waiting on a slow backend: a node then serves at most its PHP-FPM workers x
            // 1000/ms requests a second, whatever the CPU (the overload examples).
            $ms = max(0, min(10000, (int)($_GET['ms'] ?? 100)));
            usleep($ms * 1000);
            reply(200, ['slept_ms' => $ms, 'node' => $node]);
        case 'POST /login':
            $user = (string)(input()['user'] ?? '');
            if ($user === '') {
                reply(400, ['error' => 'user required']);
            }
            if (!session_start()) {
                reply(503, ['error' => 'session store unavailable']);
            }
            session_regenerate_id(false);
            $_SESSION['user'] = $user;
            $_SESSION['login_node'] = $node;
            reply(200, ['user' => $user, 'node' => $node]);
        case 'GET /whoami':
            if (!isset($_COOKIE[session_name()])) {
                reply(401, ['error' => 'no session cookie']);
            }
            // A session store that cannot be reached is an outage (503), not a lost session (401).
            // Reading never hands out a cookie: when the store cannot confirm the id, PHP's strict
            // mode makes a new one, and sending it would replace the client's good cookie for
            // good (a store failover would then log everyone out after the store is back).
            $started = session_start(['read_and_close' => true]);
            header_remove('Set-Cookie');
            if (!$started) {
                reply(503, ['error' => 'session store unavailable']);
            }
            if (session_id() !== $_COOKIE[session_name()]) {
                // strict mode refused the id: lost only if the store answers and has no such
                // session; unreachable, or there after all (a failover in between), is an outage
                if (store_has((string)$_COOKIE[session_name()]) !== false) {
                    reply(503, ['error' => 'session store could not confirm the session']);
                }
                error_log('lost session: the store has no session ' . $_COOKIE[session_name()]);
                reply(401, ['error' => 'session not found']);
            }
            if (!isset($_SESSION['user'])) {
                error_log('lost session: the session holds no user (' . count($_SESSION) . ' keys)');
                reply(401, ['error' => 'session not found']);
            }
            reply(200, ['user' => $_SESSION['user'], 'login_node' => $_SESSION['login_node'] ?? null, 'node' => $node]);
        case 'POST /orders':
            $in = input();
            $id = (string)($in['id'] ?? '');
            if (!preg_match('/^[A-Za-z0-9_-]{1,64}$/', $id)) {
                reply(400, ['error' => 'id must be 1-64 chars of [A-Za-z0-9_-]']);
            }
            $stmt = db()->prepare('INSERT INTO orders (id, item, node) VALUES (?, ?, ?)');
            $stmt->execute([$id, (string)($in['item'] ?? ''), $node]);  // autocommit: acked after commit
            reply(200, ['id' => $id, 'node' => $node]);
        default:
            reply(404, ['error' => 'not found', 'path' => $path]);
    }
} catch (Throwable $e) {
    reply(503, ['error' => get_class($e) . ': ' . $e->getMessage(), 'node' => $node]);
}
