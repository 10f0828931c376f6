"""The Python side of mp-bench: the same experiments with multiprocessing (fork).

Run by the mp-bench binary as `python3 mpbench.py COMMAND 'JSON settings'`; prints one JSON
object on standard output. Every time is in seconds, every size in bytes. The timing method
of `pingpong` is the one of mp-bench's Rust sweep (see crates/bench/src/sweep.rs).
"""

import json
import os
import multiprocessing
import sys
import time

FORK = multiprocessing.get_context("fork")
WORKERS = 4
WARM_MIN = 2
WARM_MAX = 1000
WARM_FRACTION = 0.1


def nothing(x):
    return x


def numpy_or_none():
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def cmd_info(_settings):
    numpy = numpy_or_none()
    try:
        import mpi4py
        mpi4py_version = mpi4py.__version__
    except ImportError:
        mpi4py_version = None
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "numpy": numpy.__version__ if numpy else None,
        "mpi4py": mpi4py_version,
    }


def answer(queue):
    queue.put(7)


def cmd_startup(settings):
    warm_up, reps = settings["warm_up"], settings["reps"]
    pool_s, process_s = [], []
    for rep in range(warm_up + reps):
        started = time.perf_counter()
        pool = FORK.Pool(WORKERS)
        pool.map(nothing, [1])
        elapsed = time.perf_counter() - started
        pool.terminate()
        pool.join()
        if rep >= warm_up:
            pool_s.append(elapsed)
    for rep in range(warm_up + reps):
        started = time.perf_counter()
        queue = FORK.Queue()
        process = FORK.Process(target=answer, args=(queue,))
        process.start()
        result = queue.get()
        process.join()
        elapsed = time.perf_counter() - started
        if result != 7:
            raise RuntimeError(f"the process sent {result!r}, not 7")
        if rep >= warm_up:
            process_s.append(elapsed)
    return {"pool_start_s": pool_s, "process_start_s": process_s}


def cmd_map(settings):
    n_tasks, reps = settings["n_tasks"], settings["reps"]
    chunksize = settings.get("chunksize")
    with FORK.Pool(WORKERS) as pool:
        pool.map(nothing, range(-(-n_tasks // 10)), chunksize)
        samples = []
        for _ in range(reps):
            started = time.perf_counter()
            results = pool.map(nothing, range(n_tasks), chunksize)
            samples.append(time.perf_counter() - started)
            if len(results) != n_tasks:
                raise RuntimeError(f"map returned {len(results)} results for {n_tasks} tasks")
    if chunksize is None:
        chunksize, extra = divmod(n_tasks, WORKERS * 4)
        chunksize += 1 if extra else 0
    return {"n_tasks": n_tasks, "chunksize": chunksize, "seconds": samples}


def sweep(plan, round_trip):
    points = []
    for size in plan["sizes"]:
        message = b"\xa5" * size
        warm, warm_started = 0, time.perf_counter()
        while True:
            round_trip(message)
            warm += 1
            elapsed = time.perf_counter() - warm_started
            if warm >= WARM_MAX or (warm >= WARM_MIN and elapsed >= WARM_FRACTION * plan["budget_s"]):
                break
        per_round_trip = (time.perf_counter() - warm_started) / warm
        per_batch = plan["budget_s"] / max(plan["samples"], 1)
        batch = int(min(max(per_batch // per_round_trip, 1), 1e7)) if per_round_trip > 0 else 1
        one_way = []
        for _ in range(max(plan["samples"], 1)):
            started = time.perf_counter()
            for _ in range(batch):
                round_trip(message)
            one_way.append((time.perf_counter() - started) / (2 * batch))
        points.append({"bytes": size, "batch": batch, "one_way_s": one_way})
    return points


def bind(plan, side):
    """Binds this process to the plan's CPU for `side` (0 measures, 1 echoes), if it has one."""
    cpus = plan.get("cpus")
    if cpus is not None:
        os.sched_setaffinity(0, {cpus[side]})


def echo(connection, plan):
    bind(plan, 1)
    while True:
        try:
            message = connection.recv_bytes()
        except EOFError:
            break
        if not message:
            break
        connection.send_bytes(message)


def cmd_pingpong(plan):
    here, there = FORK.Pipe()
    process = FORK.Process(target=echo, args=(there, plan))
    process.start()
    there.close()
    bind(plan, 0)

    def round_trip(message):
        here.send_bytes(message)
        if len(here.recv_bytes()) != len(message):
            raise RuntimeError("the echo came back with another size")

    points = sweep(plan, round_trip)
    here.send_bytes(b"")
    process.join()
    return {"points": points}


def make_array(task):
    index, length = task
    import numpy
    return numpy.full(length, index + 1.0)


def check_arrays(arrays, length):
    for index, array in enumerate(arrays):
        if len(array) != length or array[0] != index + 1.0:
            raise RuntimeError(f"array {index} came back wrong")


def array_server(connection, index, length):
    # A fork child inherits the parent's ends of the other servers' pipes, so end-of-file
    # never comes: an empty request says stop.
    while connection.recv_bytes():
        connection.send_bytes(make_array((index, length)))


def cmd_gather(settings):
    numpy = numpy_or_none()
    if numpy is None:
        raise RuntimeError("numpy is missing")
    length, reps = settings["len"], settings["reps"]
    tasks = [(index, length) for index in range(WORKERS)]
    pool_s = []
    with FORK.Pool(WORKERS) as pool:
        for rep in range(reps + 1):
            started = time.perf_counter()
            arrays = pool.map(make_array, tasks)
            elapsed = time.perf_counter() - started
            check_arrays(arrays, length)
            if rep > 0:
                pool_s.append(elapsed)
    connections, servers = [], []
    for index in range(WORKERS):
        here, there = FORK.Pipe()
        server = FORK.Process(target=array_server, args=(there, index, length))
        server.start()
        there.close()
        connections.append(here)
        servers.append(server)
    pipes_s = []
    for rep in range(reps + 1):
        started = time.perf_counter()
        for connection in connections:
            connection.send_bytes(b"\x01")
        arrays = [numpy.frombuffer(c.recv_bytes(), dtype=numpy.float64) for c in connections]
        elapsed = time.perf_counter() - started
        check_arrays(arrays, length)
        if rep > 0:
            pipes_s.append(elapsed)
    for connection in connections:
        connection.send_bytes(b"")
        connection.close()
    for server in servers:
        server.join()
    return {"pool_s": pool_s, "pipes_s": pipes_s}


def peak_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                if unit != "kB":
                    raise RuntimeError(f"VmHWM in {unit}")
                return int(value) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def send_side(connection, n_bytes, report):
    baseline = peak_bytes()
    message = b"\x01" * n_bytes
    connection.send_bytes(message)
    del message
    connection.close()
    report.send({"baseline_bytes": baseline, "peak_bytes": peak_bytes()})


def receive_side(connection, n_bytes, report):
    baseline = peak_bytes()
    message = connection.recv_bytes()
    if len(message) != n_bytes:
        raise RuntimeError(f"received {len(message)} B, expected {n_bytes} B")
    report.send({"baseline_bytes": baseline, "peak_bytes": peak_bytes()})


def cmd_memory(settings):
    n_bytes = settings["bytes"]
    receiving_end, sending_end = FORK.Pipe(duplex=False)
    reports = []
    processes = []
    for target, end in ((receive_side, receiving_end), (send_side, sending_end)):
        report_in, report_out = FORK.Pipe(duplex=False)
        process = FORK.Process(target=target, args=(end, n_bytes, report_out))
        process.start()
        report_out.close()
        reports.append(report_in)
        processes.append(process)
    receiving_end.close()
    sending_end.close()
    receiver, sender = (report.recv() for report in reports)
    for process in processes:
        process.join()
    return {"message_bytes": n_bytes, "sender": sender, "receiver": receiver}


def cmd_mpi4py_pingpong(plan):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    largest = max(plan["sizes"])
    buffer = bytearray(b"\xa5" * largest)
    if comm.Get_rank() == 1:
        status = MPI.Status()
        while True:
            comm.Probe(source=0, tag=MPI.ANY_TAG, status=status)
            count = status.Get_count(MPI.BYTE)
            comm.Recv([buffer, count, MPI.BYTE], source=0, tag=MPI.ANY_TAG)
            if status.Get_tag() == 1:
                return None
            comm.Send([buffer, count, MPI.BYTE], dest=0, tag=0)
    view = memoryview(buffer)

    def round_trip(message):
        n = len(message)
        comm.Send([view[:n], n, MPI.BYTE], dest=1, tag=0)
        comm.Recv([view[:n], n, MPI.BYTE], source=1, tag=0)

    points = sweep(plan, round_trip)
    comm.Send([view[:1], 1, MPI.BYTE], dest=1, tag=1)
    return {"mpi4py": __import__("mpi4py").__version__, "points": points}


COMMANDS = {
    "info": cmd_info,
    "startup": cmd_startup,
    "map": cmd_map,
    "pingpong": cmd_pingpong,
    "gather": cmd_gather,
    "memory": cmd_memory,
    "mpi4py_pingpong": cmd_mpi4py_pingpong,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(COMMANDS)}}} 'JSON settings'")
    result = COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
    if result is not None:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
