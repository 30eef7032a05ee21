/*
 * FANN 2.2 (Debian's libfann-dev, float build) training throughput on the networks of
 * benches/training.rs. Prints one JSON record per network and mode on stdout.
 *
 *   cc -O2 -o benches/peers/build/fann_peer benches/peers/fann_peer.c -lfloatfann -lm
 *   benches/peers/build/fann_peer "$(dpkg-query -W -f='${Version}' libfann-dev)"
 *
 * Set-up: fann_create_standard with the layer sizes, FANN_SIGMOID on every layer with
 * steepness 0.5 (FANN's sigmoid is 1 / (1 + exp(-2 s x)), so s = 0.5 is the logistic
 * function), FANN_ERRORFUNC_LINEAR (plain squared error; the default, FANN_ERRORFUNC_TANH,
 * is not), learning rate 0.01, no momentum, weights drawn from U(-r, r) with deltaprop's
 * Xavier r = sqrt(6 / (H + L)) of the first layer.
 *
 * Per sample: FANN_TRAIN_INCREMENTAL and fann_train on each of the 64 samples in a row (one
 * call = 64 samples). Per batch: FANN_TRAIN_BATCH is full-batch training over a data set,
 * updating once per epoch with the mean gradient (learning_rate / num_data); so a data set
 * holding exactly one batch of B rows and one fann_train_epoch is one minibatch step.
 *
 * What FANN cannot do: it has no softmax and no cross-entropy, so the three softmax +
 * cross-entropy networks run here with the same layer sizes and a sigmoid output with
 * squared error (exact_match false); its squared error has no factor 2 (the gradient of
 * ||t - y||^2 / 2), a constant that changes no timing; it stores weights per neuron
 * (outputs x inputs, with the bias as an extra connection), not inputs x outputs; and it is
 * single-threaded.
 */
#include <floatfann.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PER_SAMPLE 64
#define LR 0.01f

struct net {
    const char *name;
    unsigned sizes[4];
    unsigned layers;
    int exact; /* 1: sigmoid output + squared error is the network itself */
};

static const struct net NETS[] = {
    {"64-32-10", {64, 32, 10}, 3, 1},
    {"64-32-10-softmax-ce", {64, 32, 10}, 3, 0},
    {"784-256-128-10", {784, 256, 128, 10}, 4, 0},
    {"1024-1024-1024-10", {1024, 1024, 1024, 10}, 4, 0},
};

/* benches/training.rs's data: xorshift64 inputs in [0, 1) and one-hot targets. */
static void data(unsigned rows, unsigned h, unsigned l, float *x, float *t) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < (size_t)rows * h; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)(s >> 40) / (float)(1u << 24);
    }
    for (size_t i = 0; i < (size_t)rows * l; i++)
        t[i] = (i % l == (i / l * 7) % l) ? 1.0f : 0.0f;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct ctx {
    struct fann *ann;
    struct fann_train_data *td; /* batch mode */
    float *x, *t;
    unsigned h, l;
};

static void call(struct ctx *c) {
    if (c->td) {
        fann_train_epoch(c->ann, c->td);
    } else {
        for (unsigned i = 0; i < PER_SAMPLE; i++)
            fann_train(c->ann, c->x + (size_t)i * c->h, c->t + (size_t)i * c->l);
    }
}

/* FANN's mean squared error over the rows of c (no training): evidence that the timed calls
 * trained the network, recorded before and after them. */
static float mse(struct ctx *c, unsigned rows) {
    fann_reset_MSE(c->ann);
    for (unsigned i = 0; i < rows; i++)
        fann_test(c->ann, c->x + (size_t)i * c->h, c->t + (size_t)i * c->l);
    return fann_get_MSE(c->ann);
}

/* Builds the network `net` and its data for `batch` (0: per sample) into c. */
static int setup(struct ctx *c, const struct net *net, unsigned batch) {
    unsigned h = net->sizes[0], l = net->sizes[net->layers - 1];
    unsigned rows = batch ? batch : PER_SAMPLE;
    c->h = h;
    c->l = l;
    c->ann = fann_create_standard_array(net->layers, net->sizes);
    if (!c->ann) {
        fprintf(stderr, "fann_create_standard_array failed\n");
        return -1;
    }
    fann_set_activation_function_hidden(c->ann, FANN_SIGMOID);
    fann_set_activation_function_output(c->ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(c->ann, 0.5f);
    fann_set_activation_steepness_output(c->ann, 0.5f);
    fann_set_train_error_function(c->ann, FANN_ERRORFUNC_LINEAR);
    fann_set_learning_rate(c->ann, LR);
    fann_set_learning_momentum(c->ann, 0.0f);
    float r = sqrtf(6.0f / (float)(net->sizes[0] + net->sizes[1]));
    fann_randomize_weights(c->ann, -r, r);
    c->x = malloc(sizeof(float) * rows * h);
    c->t = malloc(sizeof(float) * rows * l);
    if (!c->x || !c->t)
        return -1;
    data(rows, h, l, c->x, c->t);
    if (batch) {
        fann_set_training_algorithm(c->ann, FANN_TRAIN_BATCH);
        c->td = fann_create_train(rows, h, l);
        if (!c->td)
            return -1;
        for (unsigned i = 0; i < rows; i++) {
            memcpy(c->td->input[i], c->x + (size_t)i * h, sizeof(float) * h);
            memcpy(c->td->output[i], c->t + (size_t)i * l, sizeof(float) * l);
        }
    } else {
        fann_set_training_algorithm(c->ann, FANN_TRAIN_INCREMENTAL);
    }
    return 0;
}

/* The paired protocol of benches/peers/paired.py: lines `NET MODE SECONDS` on stdin (MODE is
 * per-sample, B32 or B256); train that case for about SECONDS (at least one call, after one
 * untimed warm-up call the first time the case is asked for) and answer one line with the
 * samples per second. Idle between requests. */
static int serve(void) {
    struct ctx ctxs[4][3];
    int made[4][3] = {{0}};
    char line[256];
    srand(1);
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        char name[64], mode[32];
        double seconds;
        if (sscanf(line, "%63s %31s %lf", name, mode, &seconds) != 3)
            continue;
        int k = -1, m = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(NETS[i].name, name) == 0)
                k = i;
        unsigned batch = 0;
        if (strcmp(mode, "per-sample") == 0)
            m = 0;
        else if (strcmp(mode, "B32") == 0)
            m = 1, batch = 32;
        else if (strcmp(mode, "B256") == 0)
            m = 2, batch = 256;
        if (k < 0 || m < 0) {
            printf("nan\n");
            fflush(stdout);
            continue;
        }
        struct ctx *c = &ctxs[k][m];
        if (!made[k][m]) {
            memset(c, 0, sizeof *c);
            if (setup(c, &NETS[k], batch) != 0)
                return 1;
            call(c);
            made[k][m] = 1;
        }
        unsigned rows = batch ? batch : PER_SAMPLE;
        long n = 0;
        double t0 = now(), el;
        do {
            call(c);
            n++;
            el = now() - t0;
        } while (el < seconds);
        printf("%.9g\n", (double)n * rows / el);
        fflush(stdout);
    }
    return 0;
}

static void cpu_model(char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(out, n, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = 0;
                snprintf(out, n, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--serve") == 0)
        return serve();
    const char *version = argc > 1 ? argv[1] : "unknown";
    char command[1024] = "";
    for (int i = 0; i < argc; i++) {
        strncat(command, i ? " " : "", sizeof command - strlen(command) - 1);
        strncat(command, argv[i], sizeof command - strlen(command) - 1);
    }
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    srand(1);
    const unsigned modes[3] = {0, 32, 256}; /* 0: per sample */
    for (size_t k = 0; k < sizeof NETS / sizeof NETS[0]; k++) {
        const struct net *net = &NETS[k];
        int big = 0;
        for (unsigned i = 0; i < net->layers; i++)
            big |= net->sizes[i] >= 1024;
        for (int m = 0; m < 3; m++) {
            unsigned batch = modes[m];
            unsigned rows = batch ? batch : PER_SAMPLE;
            struct ctx c = {0};
            if (setup(&c, net, batch) != 0)
                return 1;
            /* The protocol of common.py: calibrate, one warm-up repetition, median of reps. */
            double target = big ? 1.0 : 0.4;
            int reps = big ? 3 : 5;
            float mse_before = mse(&c, rows);
            double t0 = now();
            call(&c);
            double once = now() - t0;
            long iters = (long)(target / (once > 1e-6 ? once : 1e-6));
            if (iters < 1)
                iters = 1;
            for (long i = 0; i < iters; i++)
                call(&c);
            double rates[5];
            for (int r2 = 0; r2 < reps; r2++) {
                t0 = now();
                for (long i = 0; i < iters; i++)
                    call(&c);
                rates[r2] = (double)iters * rows / (now() - t0);
            }
            float mse_after = mse(&c, rows);
            double sorted[5];
            memcpy(sorted, rates, sizeof rates);
            qsort(sorted, reps, sizeof(double), cmp);
            double load[1] = {0};
            getloadavg(load, 1);
            char date[32];
            time_t tt = time(NULL);
            strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S+00:00", gmtime(&tt));
            char group[96];
            if (batch)
                snprintf(group, sizeof group, "train_batch/B%u/%s", batch, net->name);
            else
                snprintf(group, sizeof group, "train_sample/%s", net->name);
            printf("{\"peer\": \"fann\", \"variant\": \"%s\", \"version\": \"%s\", "
                   "\"threads\": 1, \"network\": \"%s\", \"mode\": \"%s\", \"batch\": %u, "
                   "\"group\": \"%s\", \"dtype\": \"f32\", \"lr\": %g, "
                   "\"samples_per_call\": %u, \"samples_per_s\": %.6g, "
                   "\"reps_samples_per_s\": [",
                   batch ? "fann_train_epoch FANN_TRAIN_BATCH (one batch per data set)"
                         : "fann_train FANN_TRAIN_INCREMENTAL",
                   version, net->name, batch ? "batch" : "per-sample", batch ? batch : 1,
                   group, (double)LR, rows, sorted[reps / 2]);
            for (int r2 = 0; r2 < reps; r2++)
                printf("%s%.6g", r2 ? ", " : "", rates[r2]);
            printf("], \"calls_per_rep\": %ld, \"mse_before\": %.6g, \"mse_after\": %.6g, "
                   "\"exact_match\": %s, ",
                   iters, (double)mse_before, (double)mse_after, net->exact ? "true" : "false");
            if (!net->exact)
                printf("\"deviation\": \"FANN has no softmax or cross-entropy: same layer sizes "
                       "with a sigmoid output and squared error\", ");
            printf("\"date\": \"%s\", \"cpu\": \"%s\", \"loadavg_1min\": %.2f, "
                   "\"command\": \"%s\"}\n",
                   date, cpu, load[0], command);
            fflush(stdout);
            if (c.td)
                fann_destroy_train(c.td);
            fann_destroy(c.ann);
            free(c.x);
            free(c.t);
        }
    }
    return 0;
}
