"""testinfra checks of a web node after the run (`testinfra:` assertion in topologies/ha.yaml):
the harness runs this module against every running instance of the service."""


def test_php_fpm_master_and_workers_run(host):
    procs = host.process.filter(comm="php-fpm8.2")
    assert len(procs) >= 2  # a master and its pool


def test_nginx_listens_on_80(host):
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_sessions_go_to_redis(host):
    ini = host.file("/etc/php/8.2/fpm/conf.d/99-harness.ini")
    assert ini.contains("session.save_handler = redis")


def test_health_answers_locally(host):
    out = host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/health")
    assert out == "200"
