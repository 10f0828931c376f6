/*
 * mp-bench's MPI ping-pong between ranks 0 and 1, with the method of mp-bench's Rust sweep
 * (crates/bench/src/sweep.rs): per size, warm up, pick a batch of round trips so that
 * SAMPLES batches fill BUDGET seconds, time each batch with MPI_Wtime; a sample is the batch
 * time / (2 x round trips), the one-way time.
 *
 * Usage: mpirun -np 2 pingpong BUDGET_SECONDS SAMPLES SIZE...
 * Rank 0 prints one JSON object: {"library": "...", "points": [{"bytes", "batch", "one_way_s"}]}.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WARM_MIN 2
#define WARM_MAX 1000
#define WARM_FRACTION 0.1

/* Rank 0 tells rank 1 how many round trips come next; 0 means the next size. */
static long announce(long n) {
    MPI_Bcast(&n, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    return n;
}

static void round_trips(int rank, char *buffer, int size, long n) {
    for (long i = 0; i < n; i++) {
        if (rank == 0) {
            MPI_Send(buffer, size, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buffer, size, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buffer, size, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buffer, size, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, n_ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    if (n_ranks != 2 || argc < 4) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np 2 %s BUDGET_SECONDS SAMPLES SIZE...\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    double budget = atof(argv[1]);
    int samples = atoi(argv[2]);
    if (samples < 1) samples = 1;
    int n_sizes = argc - 3;
    long largest = 1;
    for (int i = 0; i < n_sizes; i++) {
        long size = atol(argv[3 + i]);
        if (size < 1 || size > 0x7fffffffL) MPI_Abort(MPI_COMM_WORLD, 2);
        if (size > largest) largest = size;
    }
    char *buffer = malloc((size_t)largest);
    double *one_way = malloc(sizeof(double) * (size_t)samples);
    if (!buffer || !one_way) MPI_Abort(MPI_COMM_WORLD, 3);
    memset(buffer, 0xa5, (size_t)largest);

    if (rank == 0) {
        char library[MPI_MAX_LIBRARY_VERSION_STRING];
        int length = 0;
        MPI_Get_library_version(library, &length);
        for (int i = 0; i < length; i++)
            if (library[i] == '"' || library[i] == '\\' || library[i] < ' ') library[i] = ' ';
        library[length] = '\0';
        printf("{\"library\": \"%s\", \"points\": [", library);
    }
    for (int s = 0; s < n_sizes; s++) {
        int size = atoi(argv[3 + s]);
        if (rank == 1) {
            long n;
            while ((n = announce(0)) > 0) round_trips(rank, buffer, size, n);
            continue;
        }
        /* Warm-up in growing steps until a tenth of the budget has passed. */
        long warm = 0, step = 1;
        double started = MPI_Wtime();
        while (warm < WARM_MIN || (warm < WARM_MAX && MPI_Wtime() - started < WARM_FRACTION * budget)) {
            round_trips(rank, buffer, size, announce(step));
            warm += step;
            if (step < 64) step *= 2;
        }
        double per_round_trip = (MPI_Wtime() - started) / (double)warm;
        double per_batch = budget / samples;
        long batch = per_round_trip > 0 ? (long)(per_batch / per_round_trip) : 1;
        if (batch < 1) batch = 1;
        if (batch > 10000000) batch = 10000000;
        for (int k = 0; k < samples; k++) {
            announce(batch);
            double t0 = MPI_Wtime();
            round_trips(rank, buffer, size, batch);
            one_way[k] = (MPI_Wtime() - t0) / (2.0 * (double)batch);
        }
        announce(0);
        printf("%s{\"bytes\": %d, \"batch\": %ld, \"one_way_s\": [", s ? ", " : "", size, batch);
        for (int k = 0; k < samples; k++) printf("%s%.9e", k ? ", " : "", one_way[k]);
        printf("]}");
    }
    if (rank == 0) printf("]}\n");
    free(buffer);
    free(one_way);
    MPI_Finalize();
    return 0;
}
