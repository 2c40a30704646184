/*
 * test_loss.c - losses against torch.nn.functional (PyTorch 1.13).
 *
 * The expected values were printed once by torch (in float64, from the
 * float32 inputs below) for every combination of options and pasted here:
 * outputs, the gradient for a unit output gradient (gout NULL), and the
 * gradient for the output gradient GOUT_VEC ("none") or GOUT_SCALAR.
 * Gradients are also checked against finite differences.
 */
#include <stdlib.h>
#include <string.h>

#include "../../runtime/loss.h"
#include "check.h"

#define N 4
#define C 3
#define TOL 1e-5

static nn_ctx ctx;

/* Class-loss inputs: logits (also used as log-probabilities for NLL),
 * targets (0-based), class weights, probability targets. */
static const float X[N * C] = {1.5f,  -0.3f, 0.2f, 0.1f, 2.2f,  -1.0f,
                               -0.7f, 0.4f,  0.9f, 0.0f, -1.2f, 1.1f};
static const int32_t T[N] = {2, 0, 1, 2};
static const float W[C] = {0.5f, 2.0f, 1.5f};
static const float P[N * C] = {0.2f, 0.3f, 0.5f, 1.0f,  0.0f,  0.0f,
                               0.1f, 0.6f, 0.3f, 0.25f, 0.25f, 0.5f};
static const float GOUT_VEC[N] = {0.5f, -1.0f, 2.0f, 1.5f};
#define GOUT_SCALAR 1.7f

/* Pointwise inputs, shape [2, 3], per kind (MSE, L1, BCE, BCEWithLogits). */
static const float PX[4][6] = {{0.5f, -1.2f, 2.0f, 0.3f, 0.7f, -0.4f},
                               {0.5f, -1.2f, 2.0f, 0.3f, 0.7f, -0.4f},
                               {0.2f, 0.9f, 0.0f, 0.55f, 0.999f, 0.3f},
                               {0.8f, -2.5f, 0.0f, 3.0f, -0.4f, -40.0f}};
static const float PY[4][6] = {{0.1f, -1.2f, 1.0f, 0.9f, 0.2f, 0.6f},
                               {0.1f, -1.2f, 1.0f, 0.9f, 0.2f, 0.6f},
                               {0.0f, 1.0f, 0.25f, 0.5f, 0.0f, 0.8f},
                               {1.0f, 0.0f, 0.5f, 0.2f, 0.7f, 1.0f}};
static const float PW[6] = {1.0f, 0.5f, 2.0f, 0.3f, 1.5f, 0.8f};
static const float PG[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};

typedef struct class_case {
  nn_reduction reduction;
  int weighted;
  float label_smoothing;
  int32_t ignore_index;
  double out[N];        /* out[0] only for "mean" and "sum" */
  double grad[N * C];   /* gout NULL */
  double grad_g[N * C]; /* gout GOUT_VEC or GOUT_SCALAR */
} class_case;

typedef struct pointwise_case {
  nn_pointwise_loss kind;
  nn_reduction reduction;
  int weighted;
  double out[6];
  double grad[6];
  double grad_g[6];
} pointwise_case;

/* clang-format off */
/* cross_entropy with class indices */
static const class_case ce_cases[] = {
    {NN_REDUCTION_MEAN, 0, 0.0f, NN_NO_IGNORE,
     {1.34166117},
     {0.173873046, 0.0287410209, -0.202614067, -0.223681555, 0.214920905, 0.00876064937, 0.0279105132, -0.166152185, 0.138241672, 0.0580671495, 0.0174894885, -0.0755566381},
     {0.295584178, 0.0488597355, -0.344443914, -0.380258643, 0.365365539, 0.0148931039, 0.0474478724, -0.282458715, 0.235010842, 0.0987141542, 0.0297321305, -0.128446285}},
    {NN_REDUCTION_MEAN, 0, 0.0f, 2,
     {1.67182419},
     {0, 0, 0, -0.44736311, 0.429841811, 0.0175212987, 0.0558210264, -0.33230437, 0.276483344, 0, 0, 0},
     {0, 0, 0, -0.760517286, 0.730731078, 0.0297862079, 0.0948957448, -0.564917429, 0.470021684, 0, 0, 0}},
    {NN_REDUCTION_MEAN, 0, 0.2f, NN_NO_IGNORE,
     {1.37832784},
     {0.157206379, 0.0120743542, -0.169280734, -0.190348221, 0.198254239, -0.0079060173, 0.0112438465, -0.132818852, 0.121575005, 0.0414004829, 0.000822821846, -0.0422233047},
     {0.267250845, 0.0205264021, -0.287777247, -0.323591976, 0.337032206, -0.0134402294, 0.0191145391, -0.225792048, 0.206677509, 0.0703808209, 0.00139879714, -0.071779618}},
    {NN_REDUCTION_MEAN, 0, 0.2f, 2,
     {1.65849085},
     {0, 0, 0, -0.380696443, 0.396508477, -0.0158120346, 0.022487693, -0.265637703, 0.24315001, 0, 0, 0},
     {0, 0, 0, -0.647183953, 0.674064412, -0.0268804588, 0.0382290782, -0.451584096, 0.413355018, 0, 0, 0}},
    {NN_REDUCTION_MEAN, 1, 0.0f, NN_NO_IGNORE,
     {1.15363725},
     {0.189679687, 0.0313538409, -0.221033527, -0.0813387472, 0.0781530565, 0.00318569068, 0.0405971101, -0.241675906, 0.201078795, 0.0633459813, 0.019079442, -0.0824254233},
     {0.322455467, 0.0533015296, -0.375756997, -0.13827587, 0.132860196, 0.00541567415, 0.0690150872, -0.410849039, 0.341833952, 0.107688168, 0.0324350514, -0.14012322}},
    {NN_REDUCTION_MEAN, 1, 0.0f, 2,
     {1.32420417},
     {0, 0, 0, -0.178945244, 0.171936724, 0.00700851949, 0.0893136422, -0.531686992, 0.44237335, 0, 0, 0},
     {0, 0, 0, -0.304206915, 0.292292431, 0.0119144831, 0.151833192, -0.903867887, 0.752034695, 0, 0, 0}},
    {NN_REDUCTION_MEAN, 1, 0.2f, NN_NO_IGNORE,
     {1.21644409},
     {0.179403976, 0.00641466467, -0.185818641, -0.0660274205, 0.0799616511, -0.0139342306, 0.03183003, -0.201321754, 0.169491724, 0.0558776868, -0.00558696983, -0.050290717},
     {0.30498676, 0.0109049299, -0.31589169, -0.112246615, 0.135934807, -0.023688192, 0.054111051, -0.342246982, 0.288135931, 0.0949920675, -0.00949784871, -0.0854942188}},
    {NN_REDUCTION_MEAN, 1, 0.2f, 2,
     {1.34268583},
     {0, 0, 0, -0.145260325, 0.175915632, -0.0306553073, 0.0700260661, -0.442907859, 0.372881793, 0, 0, 0},
     {0, 0, 0, -0.246942553, 0.299056575, -0.0521140225, 0.119044312, -0.752943361, 0.633899049, 0, 0, 0}},
    {NN_REDUCTION_SUM, 0, 0.0f, NN_NO_IGNORE,
     {5.36664468},
     {0.695492184, 0.114964083, -0.810456267, -0.894726219, 0.859683622, 0.0350425975, 0.111642053, -0.66460874, 0.552966687, 0.232268598, 0.069957954, -0.302226552},
     {1.18233671, 0.195438942, -1.37777565, -1.52103457, 1.46146216, 0.0595724157, 0.18979149, -1.12983486, 0.940043369, 0.394856617, 0.118928522, -0.513785139}},
    {NN_REDUCTION_SUM, 0, 0.0f, 2,
     {3.34364837},
     {0, 0, 0, -0.894726219, 0.859683622, 0.0350425975, 0.111642053, -0.66460874, 0.552966687, 0, 0, 0},
     {0, 0, 0, -1.52103457, 1.46146216, 0.0595724157, 0.18979149, -1.12983486, 0.940043369, 0, 0, 0}},
    {NN_REDUCTION_SUM, 0, 0.2f, NN_NO_IGNORE,
     {5.51331135},
     {0.628825517, 0.0482974168, -0.677122934, -0.761392886, 0.793016955, -0.0316240692, 0.0449753861, -0.531275407, 0.486300021, 0.165601932, 0.00329128738, -0.168893219},
     {1.06900338, 0.0821056085, -1.15110899, -1.29436791, 1.34812882, -0.0537609176, 0.0764581564, -0.903168192, 0.826710035, 0.281523284, 0.00559518855, -0.287118472}},
    {NN_REDUCTION_SUM, 0, 0.2f, 2,
     {3.31698171},
     {0, 0, 0, -0.761392886, 0.793016955, -0.0316240692, 0.0449753861, -0.531275407, 0.486300021, 0, 0, 0},
     {0, 0, 0, -1.29436791, 1.34812882, -0.0537609176, 0.0764581564, -0.903168192, 0.826710035, 0, 0, 0}},
    {NN_REDUCTION_SUM, 1, 0.0f, NN_NO_IGNORE,
     {6.34500488},
     {1.04323828, 0.172446125, -1.2156844, -0.44736311, 0.429841811, 0.0175212987, 0.223284106, -1.32921748, 1.10593337, 0.348402897, 0.104936931, -0.453339828},
     {1.77350507, 0.293158413, -2.06666348, -0.760517286, 0.730731078, 0.0297862079, 0.379582979, -2.25966972, 1.88008674, 0.592284925, 0.178392783, -0.770677708}},
    {NN_REDUCTION_SUM, 1, 0.0f, 2,
     {3.31051042},
     {0, 0, 0, -0.44736311, 0.429841811, 0.0175212987, 0.223284106, -1.32921748, 1.10593337, 0, 0, 0},
     {0, 0, 0, -0.760517286, 0.730731078, 0.0297862079, 0.379582979, -2.25966972, 1.88008674, 0, 0, 0}},
    {NN_REDUCTION_SUM, 1, 0.2f, NN_NO_IGNORE,
     {6.69044249},
     {0.98672187, 0.0352806557, -1.02200253, -0.363150813, 0.439789081, -0.0766382684, 0.175065165, -1.10726965, 0.932204483, 0.307327277, -0.0307283341, -0.276598943},
     {1.67742718, 0.0599771147, -1.73740429, -0.617356382, 0.747641438, -0.130285056, 0.297610781, -1.8823584, 1.58474762, 0.522456371, -0.0522381679, -0.470218204}},
    {NN_REDUCTION_SUM, 1, 0.2f, 2,
     {3.35671457},
     {0, 0, 0, -0.363150813, 0.439789081, -0.0766382684, 0.175065165, -1.10726965, 0.932204483, 0, 0, 0},
     {0, 0, 0, -0.617356382, 0.747641438, -0.130285056, 0.297610781, -1.8823584, 1.58474762, 0, 0, 0}},
    {NN_REDUCTION_NONE, 0, 0.0f, NN_NO_IGNORE,
     {1.6631355, 2.25119089, 1.09245749, 0.359860802},
     {0.695492184, 0.114964083, -0.810456267, -0.894726219, 0.859683622, 0.0350425975, 0.111642053, -0.66460874, 0.552966687, 0.232268598, 0.069957954, -0.302226552},
     {0.347746092, 0.0574820417, -0.405228134, 0.894726219, -0.859683622, -0.0350425975, 0.223284106, -1.32921748, 1.10593337, 0.348402897, 0.104936931, -0.453339828}},
    {NN_REDUCTION_NONE, 0, 0.0f, 2,
     {0, 2.25119089, 1.09245749, 0},
     {0, 0, 0, -0.894726219, 0.859683622, 0.0350425975, 0.111642053, -0.66460874, 0.552966687, 0, 0, 0},
     {0, 0, 0, 0.894726219, -0.859683622, -0.0350425975, 0.223284106, -1.32921748, 1.10593337, 0, 0, 0}},
    {NN_REDUCTION_NONE, 0, 0.2f, NN_NO_IGNORE,
     {1.60980217, 2.18452422, 1.13245749, 0.586527475},
     {0.628825517, 0.0482974168, -0.677122934, -0.761392886, 0.793016955, -0.0316240692, 0.0449753861, -0.531275407, 0.486300021, 0.165601932, 0.00329128738, -0.168893219},
     {0.314412759, 0.0241487084, -0.338561467, 0.761392886, -0.793016955, 0.0316240692, 0.0899507722, -1.06255081, 0.972600042, 0.248402897, 0.00493693107, -0.253339828}},
    {NN_REDUCTION_NONE, 0, 0.2f, 2,
     {0, 2.18452422, 1.13245749, 0},
     {0, 0, 0, -0.761392886, 0.793016955, -0.0316240692, 0.0449753861, -0.531275407, 0.486300021, 0, 0, 0},
     {0, 0, 0, 0.761392886, -0.793016955, 0.0316240692, 0.0899507722, -1.06255081, 0.972600042, 0, 0, 0}},
    {NN_REDUCTION_NONE, 1, 0.0f, NN_NO_IGNORE,
     {2.49470325, 1.12559544, 2.18491498, 0.539791203},
     {1.04323828, 0.172446125, -1.2156844, -0.44736311, 0.429841811, 0.0175212987, 0.223284106, -1.32921748, 1.10593337, 0.348402897, 0.104936931, -0.453339828},
     {0.521619138, 0.0862230626, -0.607842201, 0.44736311, -0.429841811, -0.0175212987, 0.446568211, -2.65843496, 2.21186675, 0.522604346, 0.157405397, -0.680009743}},
    {NN_REDUCTION_NONE, 1, 0.0f, 2,
     {0, 1.12559544, 2.18491498, 0},
     {0, 0, 0, -0.44736311, 0.429841811, 0.0175212987, 0.223284106, -1.32921748, 1.10593337, 0, 0, 0},
     {0, 0, 0, 0.44736311, -0.429841811, -0.0175212987, 0.446568211, -2.65843496, 2.21186675, 0, 0, 0}},
    {NN_REDUCTION_NONE, 1, 0.2f, NN_NO_IGNORE,
     {2.46259874, 1.33079392, 2.02592065, 0.871129187},
     {0.98672187, 0.0352806557, -1.02200253, -0.363150813, 0.439789081, -0.0766382684, 0.175065165, -1.10726965, 0.932204483, 0.307327277, -0.0307283341, -0.276598943},
     {0.493360935, 0.0176403278, -0.511001263, 0.363150813, -0.439789081, 0.0766382684, 0.35013033, -2.2145393, 1.86440897, 0.460990916, -0.0460925011, -0.414898415}},
    {NN_REDUCTION_NONE, 1, 0.2f, 2,
     {0, 1.33079392, 2.02592065, 0},
     {0, 0, 0, -0.363150813, 0.439789081, -0.0766382684, 0.175065165, -1.10726965, 0.932204483, 0, 0, 0},
     {0, 0, 0, 0.363150813, -0.439789081, 0.0766382684, 0.35013033, -2.2145393, 1.86440897, 0, 0, 0}},
};
/* nll_loss */
static const class_case nll_cases[] = {
    {NN_REDUCTION_MEAN, 0, 0.0f, NN_NO_IGNORE,
     {-0.450000009},
     {0, 0, -0.25, -0.25, 0, 0, 0, -0.25, 0, 0, 0, -0.25},
     {0, 0, -0.425, -0.425, 0, 0, 0, -0.425, 0, 0, 0, -0.425}},
    {NN_REDUCTION_MEAN, 0, 0.0f, 2,
     {-0.250000004},
     {0, 0, 0, -0.5, 0, 0, 0, -0.5, 0, 0, 0, 0},
     {0, 0, 0, -0.85, 0, 0, 0, -0.85, 0, 0, 0, 0}},
    {NN_REDUCTION_MEAN, 1, 0.0f, NN_NO_IGNORE,
     {-0.509090919},
     {0, 0, -0.272727273, -0.0909090909, 0, 0, 0, -0.363636364, 0, 0, 0, -0.272727273},
     {0, 0, -0.463636364, -0.154545455, 0, 0, 0, -0.618181818, 0, 0, 0, -0.463636364}},
    {NN_REDUCTION_MEAN, 1, 0.0f, 2,
     {-0.340000005},
     {0, 0, 0, -0.2, 0, 0, 0, -0.8, 0, 0, 0, 0},
     {0, 0, 0, -0.34, 0, 0, 0, -1.36, 0, 0, 0, 0}},
    {NN_REDUCTION_SUM, 0, 0.0f, NN_NO_IGNORE,
     {-1.80000003},
     {0, 0, -1, -1, 0, 0, 0, -1, 0, 0, 0, -1},
     {0, 0, -1.7, -1.7, 0, 0, 0, -1.7, 0, 0, 0, -1.7}},
    {NN_REDUCTION_SUM, 0, 0.0f, 2,
     {-0.500000007},
     {0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, 0},
     {0, 0, 0, -1.7, 0, 0, 0, -1.7, 0, 0, 0, 0}},
    {NN_REDUCTION_SUM, 1, 0.0f, NN_NO_IGNORE,
     {-2.80000005},
     {0, 0, -1.5, -0.5, 0, 0, 0, -2, 0, 0, 0, -1.5},
     {0, 0, -2.55, -0.85, 0, 0, 0, -3.4, 0, 0, 0, -2.55}},
    {NN_REDUCTION_SUM, 1, 0.0f, 2,
     {-0.850000013},
     {0, 0, 0, -0.5, 0, 0, 0, -2, 0, 0, 0, 0},
     {0, 0, 0, -0.85, 0, 0, 0, -3.4, 0, 0, 0, 0}},
    {NN_REDUCTION_NONE, 0, 0.0f, NN_NO_IGNORE,
     {-0.200000003, -0.100000001, -0.400000006, -1.10000002},
     {0, 0, -1, -1, 0, 0, 0, -1, 0, 0, 0, -1},
     {0, 0, -0.5, 1, 0, 0, 0, -2, 0, 0, 0, -1.5}},
    {NN_REDUCTION_NONE, 0, 0.0f, 2,
     {0, -0.100000001, -0.400000006, 0},
     {0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, 0},
     {0, 0, 0, 1, 0, 0, 0, -2, 0, 0, 0, 0}},
    {NN_REDUCTION_NONE, 1, 0.0f, NN_NO_IGNORE,
     {-0.300000004, -0.0500000007, -0.800000012, -1.65000004},
     {0, 0, -1.5, -0.5, 0, 0, 0, -2, 0, 0, 0, -1.5},
     {0, 0, -0.75, 0.5, 0, 0, 0, -4, 0, 0, 0, -2.25}},
    {NN_REDUCTION_NONE, 1, 0.0f, 2,
     {0, -0.0500000007, -0.800000012, 0},
     {0, 0, 0, -0.5, 0, 0, 0, -2, 0, 0, 0, 0},
     {0, 0, 0, 0.5, 0, 0, 0, -4, 0, 0, 0, 0}},
};
/* cross_entropy with probability targets */
static const class_case prob_cases[] = {
    {NN_REDUCTION_MEAN, 0, 0.0f, NN_NO_IGNORE,
     {1.51666119},
     {0.123873048, -0.0462589817, -0.0776140662, -0.223681555, 0.214920905, 0.00876064937, 0.00291051386, -0.0661521879, 0.063241674, -0.00443285045, -0.0450105115, 0.0494433619},
     {0.210584181, -0.0786402689, -0.131943912, -0.380258643, 0.365365539, 0.0148931039, 0.00494787356, -0.112458719, 0.107510846, -0.00753584577, -0.0765178695, 0.0840537153}},
    {NN_REDUCTION_MEAN, 0, 0.2f, NN_NO_IGNORE,
     {1.51832786},
     {0.117206381, -0.0479256479, -0.069280733, -0.190348221, 0.198254239, -0.0079060173, -0.00875615294, -0.052818854, 0.0615750069, -0.00859951712, -0.0491771782, 0.0577766953},
     {0.199250847, -0.0814736014, -0.117777246, -0.323591976, 0.337032206, -0.0134402294, -0.01488546, -0.0897920518, 0.104677512, -0.0146191791, -0.0836012029, 0.098220382}},
    {NN_REDUCTION_MEAN, 1, 0.0f, NN_NO_IGNORE,
     {1.79415711},
     {0.227115921, -0.108325525, -0.118790396, -0.111840777, 0.107460453, 0.00438032468, 0.0349478741, -0.157458721, 0.122510847, 0.0485923306, -0.100951953, 0.0523596227},
     {0.386097065, -0.184153392, -0.201943673, -0.190129322, 0.18268277, 0.00744655196, 0.059411386, -0.267679826, 0.20826844, 0.0826069621, -0.171618321, 0.0890113585}},
    {NN_REDUCTION_MEAN, 1, 0.2f, NN_NO_IGNORE,
     {1.83893533},
     {0.219725549, -0.112329481, -0.107396068, -0.0907877032, 0.10994727, -0.0191595671, 0.0270677695, -0.136940893, 0.109873123, 0.0460251044, -0.109431032, 0.063405928},
     {0.373533433, -0.190960118, -0.182573315, -0.154339095, 0.186910359, -0.032571264, 0.0460152081, -0.232799518, 0.18678431, 0.0782426775, -0.186032755, 0.107790078}},
    {NN_REDUCTION_SUM, 0, 0.0f, NN_NO_IGNORE,
     {6.06664478},
     {0.495492191, -0.185035927, -0.310456265, -0.894726219, 0.859683622, 0.0350425975, 0.0116420554, -0.264608752, 0.252966696, -0.0177314018, -0.180042046, 0.197773448},
     {0.842336725, -0.314561076, -0.52777565, -1.52103457, 1.46146216, 0.0595724157, 0.0197914942, -0.449834878, 0.430043383, -0.0301433831, -0.306071478, 0.336214861}},
    {NN_REDUCTION_SUM, 0, 0.2f, NN_NO_IGNORE,
     {6.07331143},
     {0.468825523, -0.191702591, -0.277122932, -0.761392886, 0.793016955, -0.0316240692, -0.0350246118, -0.211275416, 0.246300028, -0.0343980685, -0.196708713, 0.231106781},
     {0.79700339, -0.325894405, -0.471108984, -1.29436791, 1.34812882, -0.0537609176, -0.05954184, -0.359168207, 0.418710047, -0.0584767164, -0.334404811, 0.392881528}},
    {NN_REDUCTION_SUM, 1, 0.0f, NN_NO_IGNORE,
     {7.17662843},
     {0.908463683, -0.4333021, -0.475161583, -0.44736311, 0.429841811, 0.0175212987, 0.139791496, -0.629834884, 0.490043388, 0.194369323, -0.403807813, 0.209438491},
     {1.54438826, -0.73661357, -0.807774691, -0.760517286, 0.730731078, 0.0297862079, 0.237645544, -1.0707193, 0.833073759, 0.330427848, -0.686473282, 0.356045434}},
    {NN_REDUCTION_SUM, 1, 0.2f, NN_NO_IGNORE,
     {7.35574134},
     {0.878902195, -0.449317924, -0.429584271, -0.363150813, 0.439789081, -0.0766382684, 0.108271078, -0.547763571, 0.439492493, 0.184100418, -0.437724129, 0.253623712},
     {1.49413373, -0.763840471, -0.730293261, -0.617356382, 0.747641438, -0.130285056, 0.184060832, -0.931198071, 0.747137239, 0.31297071, -0.74413102, 0.43116031}},
    {NN_REDUCTION_NONE, 0, 0.0f, NN_NO_IGNORE,
     {1.55313553, 2.25119089, 1.05245753, 1.20986083},
     {0.495492191, -0.185035927, -0.310456265, -0.894726219, 0.859683622, 0.0350425975, 0.0116420554, -0.264608752, 0.252966696, -0.0177314018, -0.180042046, 0.197773448},
     {0.247746096, -0.0925179634, -0.155228132, 0.894726219, -0.859683622, -0.0350425975, 0.0232841109, -0.529217503, 0.505933392, -0.0265971027, -0.270063069, 0.296660172}},
    {NN_REDUCTION_NONE, 0, 0.2f, NN_NO_IGNORE,
     {1.5218022, 2.18452422, 1.10045753, 1.26652749},
     {0.468825523, -0.191702591, -0.277122932, -0.761392886, 0.793016955, -0.0316240692, -0.0350246118, -0.211275416, 0.246300028, -0.0343980685, -0.196708713, 0.231106781},
     {0.234412762, -0.0958512957, -0.138561466, 0.761392886, -0.793016955, 0.0316240692, -0.0700492235, -0.422550832, 0.492600056, -0.0515971027, -0.295063069, 0.346660172}},
    {NN_REDUCTION_NONE, 1, 0.0f, NN_NO_IGNORE,
     {2.58154654, 1.12559544, 1.68717781, 1.78230864},
     {0.908463683, -0.4333021, -0.475161583, -0.44736311, 0.429841811, 0.0175212987, 0.139791496, -0.629834884, 0.490043388, 0.194369323, -0.403807813, 0.209438491},
     {0.454231842, -0.21665105, -0.237580792, 0.44736311, -0.429841811, -0.0175212987, 0.279582993, -1.25966977, 0.980086775, 0.291553984, -0.60571172, 0.314157736}},
    {NN_REDUCTION_NONE, 1, 0.2f, NN_NO_IGNORE,
     {2.53207337, 1.33079392, 1.62773091, 1.86514314},
     {0.878902195, -0.449317924, -0.429584271, -0.363150813, 0.439789081, -0.0766382684, 0.108271078, -0.547763571, 0.439492493, 0.184100418, -0.437724129, 0.253623712},
     {0.439451098, -0.224658962, -0.214792136, 0.363150813, -0.439789081, 0.0766382684, 0.216542156, -1.09552714, 0.878984987, 0.276150626, -0.656586194, 0.380435568}},
};
/* pointwise losses on [2, 3] */
static const pointwise_case pw_cases[] = {
    {NN_LOSS_MSE, NN_REDUCTION_MEAN, 0,
     {0.461666667},
     {0.133333333, 0, 0.333333333, -0.199999988, 0.166666662, -0.333333343},
     {0.226666666, 0, 0.566666667, -0.33999998, 0.283333325, -0.566666684}},
    {NN_LOSS_MSE, NN_REDUCTION_SUM, 0,
     {2.77},
     {0.799999997, 0, 2, -1.19999993, 0.99999997, -2.00000006},
     {1.35999999, 0, 3.4, -2.03999988, 1.69999995, -3.4000001}},
    {NN_LOSS_MSE, NN_REDUCTION_NONE, 0,
     {0.159999999, 0, 1, 0.359999957, 0.249999985, 1.00000006},
     {0.799999997, 0, 2, -1.19999993, 0.99999997, -2.00000006},
     {0.399999999, -0, 4, -1.79999989, 0.249999993, 1.50000004}},
    {NN_LOSS_L1, NN_REDUCTION_MEAN, 0,
     {0.58333333},
     {0.166666667, 0, 0.166666667, -0.166666667, 0.166666667, -0.166666667},
     {0.283333333, 0, 0.283333333, -0.283333333, 0.283333333, -0.283333333}},
    {NN_LOSS_L1, NN_REDUCTION_SUM, 0,
     {3.49999998},
     {1, 0, 1, -1, 1, -1},
     {1.7, 0, 1.7, -1.7, 1.7, -1.7}},
    {NN_LOSS_L1, NN_REDUCTION_NONE, 0,
     {0.399999999, 0, 1, 0.599999964, 0.499999985, 1.00000003},
     {1, 0, 1, -1, 1, -1},
     {0.5, -0, 2, -1.5, 0.25, 0.75}},
    {NN_LOSS_BCE, NN_REDUCTION_MEAN, 0,
     {5.66149297},
     {0.208333334, -0.18518519, -4.16666668e+10, 0.0336700419, 166.668812, -0.396825388},
     {0.354166668, -0.314814823, -7.08333336e+10, 0.0572390712, 283.336981, -0.674603159}},
    {NN_LOSS_BCE, NN_REDUCTION_MEAN, 1,
     {10.2790897},
     {0.208333334, -0.092592595, -8.33333337e+10, 0.010101013, 250.003219, -0.317460315},
     {0.354166668, -0.157407412, -1.41666667e+11, 0.017171722, 425.005472, -0.539682535}},
    {NN_LOSS_BCE, NN_REDUCTION_SUM, 0,
     {33.9689578},
     {1.25, -1.11111114, -2.50000001e+11, 0.202020251, 1000.01287, -2.38095233},
     {2.12500001, -1.88888894, -4.25000002e+11, 0.343434427, 1700.02189, -4.04761896}},
    {NN_LOSS_BCE, NN_REDUCTION_SUM, 1,
     {61.6745384},
     {1.25, -0.55555557, -5.00000002e+11, 0.0606060778, 1500.01931, -1.90476189},
     {2.12500001, -0.944444469, -8.50000003e+11, 0.103030332, 2550.03283, -3.23809521}},
    {NN_LOSS_BCE, NN_REDUCTION_NONE, 0,
     {0.223143555, 0.105360542, 25, 0.698172351, 6.90776815, 1.03451321},
     {1.25, -1.11111114, -2.50000001e+11, 0.202020251, 1000.01287, -2.38095233},
     {0.625000002, 1.11111114, -5.00000002e+11, 0.303030377, 250.003219, 1.78571425}},
    {NN_LOSS_BCE, NN_REDUCTION_NONE, 1,
     {0.223143555, 0.0526802711, 50, 0.209451714, 10.3616522, 0.827610584},
     {1.25, -0.55555557, -5.00000002e+11, 0.0606060778, 1500.01931, -1.90476189},
     {0.625000002, 0.55555557, -1e+12, 0.0909091166, 375.004828, 1.42857142}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_MEAN, 0,
     {7.39745669},
     {-0.0516709194, 0.01264303, 0, 0.125429021, -0.0497812749, -0.166666667},
     {-0.087840563, 0.021493151, 0, 0.213229335, -0.0846281674, -0.283333333}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_MEAN, 1,
     {5.95348991},
     {-0.0516709194, 0.006321515, 0, 0.0376287077, -0.0746719124, -0.133333335},
     {-0.087840563, 0.0107465755, 0, 0.0639688031, -0.126942251, -0.22666667}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_SUM, 0,
     {44.3847402},
     {-0.310025516, 0.07585818, 0, 0.752574124, -0.29868765, -1},
     {-0.527043378, 0.128958906, 0, 1.27937601, -0.507769004, -1.7}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_SUM, 1,
     {35.7209395},
     {-0.310025516, 0.03792909, 0, 0.225772246, -0.448031474, -0.800000012},
     {-0.527043378, 0.064479453, 0, 0.383812818, -0.761653507, -1.36000002}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_NONE, 0,
     {0.371100662, 0.0788897343, 0.693147181, 2.44858734, 0.793015249, 40},
     {-0.310025516, 0.07585818, 0, 0.752574124, -0.29868765, -1},
     {-0.155012758, -0.07585818, 0, 1.12886119, -0.0746719124, 0.75}},
    {NN_LOSS_BCE_WITH_LOGITS, NN_REDUCTION_NONE, 1,
     {0.371100662, 0.0394448671, 1.38629436, 0.734576232, 1.18952287, 32.0000005},
     {-0.310025516, 0.03792909, 0, 0.225772246, -0.448031474, -0.800000012},
     {-0.155012758, -0.03792909, 0, 0.338658369, -0.112007869, 0.600000009}},
};
/* clang-format on */

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A new contiguous tensor holding a copy of v. */
static nn_tensor *tensor_of(int ndim, const int64_t *shape, const float *v) {
  nn_tensor *t = nn_tensor_empty(ndim, shape, NULL);
  memcpy(nn_data(t), v, (size_t)nn_tensor_numel(t) * sizeof(float));
  return t;
}

static nn_tensor *scalar_of(float v) { return tensor_of(0, NULL, &v); }

typedef enum class_kind { CE, NLL, PROB } class_kind;

/* Dispatches to the forward/backward of one class loss; labels are used by
 * CE and NLL, probs by PROB. */
static int class_forward(class_kind k, const nn_tensor *x,
                         const int32_t *labels, const nn_tensor *probs,
                         const nn_class_loss_opts *o, nn_tensor **out,
                         nn_error *err) {
  if (k == CE) return nn_cross_entropy_forward(&ctx, x, labels, o, out, err);
  if (k == NLL) return nn_nll_forward(&ctx, x, labels, o, out, err);
  return nn_cross_entropy_prob_forward(&ctx, x, probs, o, out, err);
}

static int class_backward(class_kind k, const nn_tensor *x,
                          const int32_t *labels, const nn_tensor *probs,
                          const nn_class_loss_opts *o, const nn_tensor *gout,
                          nn_tensor **gin, nn_error *err) {
  if (k == CE)
    return nn_cross_entropy_backward(&ctx, x, labels, o, gout, gin, err);
  if (k == NLL) return nn_nll_backward(&ctx, x, labels, o, gout, gin, err);
  return nn_cross_entropy_prob_backward(&ctx, x, probs, o, gout, gin, err);
}

static void check_values(const nn_tensor *t, const double *want, int64_t n,
                         const char *what, int c) {
  for (int64_t i = 0; i < n; i++) {
    double got = nn_data(t)[i];
    CHECK_NEAR(got, want[i], TOL);
    if (!(fabs(got - want[i]) <= TOL * fmax(1.0, fabs(want[i]))))
      fprintf(stderr, "  %s of case %d, element %lld\n", what, c, (long long)i);
  }
}

static void run_class_cases(class_kind k, const class_case *cases, int n) {
  int64_t xs[2] = {N, C}, ns = N, cs = C;
  nn_tensor *x = tensor_of(2, xs, X), *probs = tensor_of(2, xs, P);
  nn_tensor *w = tensor_of(1, &cs, W);
  nn_tensor *gvec = tensor_of(1, &ns, GOUT_VEC), *gsc = scalar_of(GOUT_SCALAR);
  for (int c = 0; c < n; c++) {
    const class_case *cc = &cases[c];
    nn_class_loss_opts o = {cc->weighted ? w : NULL, cc->label_smoothing,
                            cc->reduction, cc->ignore_index};
    nn_error err = {{0}};
    nn_tensor *out = NULL, *g1 = NULL, *g2 = NULL;
    int none = cc->reduction == NN_REDUCTION_NONE;
    CHECK(class_forward(k, x, T, probs, &o, &out, &err) == 0);
    CHECK(class_backward(k, x, T, probs, &o, NULL, &g1, &err) == 0);
    CHECK(class_backward(k, x, T, probs, &o, none ? gvec : gsc, &g2, &err) ==
          0);
    if (!out || !g1 || !g2) {
      fprintf(stderr, "  case %d: %s\n", c, err.msg);
    } else {
      CHECK(none ? nn_tensor_has_shape(out, 1, &ns) : out->ndim == 0);
      CHECK(nn_tensor_has_shape(g1, 2, xs) && nn_tensor_has_shape(g2, 2, xs));
      check_values(out, cc->out, none ? N : 1, "output", c);
      check_values(g1, cc->grad, N * C, "grad", c);
      check_values(g2, cc->grad_g, N * C, "grad with gout", c);
    }
    nn_tensor_release(out);
    nn_tensor_release(g1);
    nn_tensor_release(g2);
  }
  nn_tensor_release(x);
  nn_tensor_release(probs);
  nn_tensor_release(w);
  nn_tensor_release(gvec);
  nn_tensor_release(gsc);
}

static void test_cross_entropy_vs_torch(void) {
  run_class_cases(CE, ce_cases, NCASES(ce_cases));
}

static void test_nll_vs_torch(void) {
  run_class_cases(NLL, nll_cases, NCASES(nll_cases));
}

static void test_cross_entropy_prob_vs_torch(void) {
  run_class_cases(PROB, prob_cases, NCASES(prob_cases));
}

static void test_pointwise_vs_torch(void) {
  int64_t s[2] = {2, 3};
  nn_tensor *w = tensor_of(2, s, PW), *gv = tensor_of(2, s, PG);
  nn_tensor *gsc = scalar_of(GOUT_SCALAR);
  for (int c = 0; c < NCASES(pw_cases); c++) {
    const pointwise_case *pc = &pw_cases[c];
    nn_tensor *x = tensor_of(2, s, PX[pc->kind]),
              *y = tensor_of(2, s, PY[pc->kind]);
    nn_tensor *wt = pc->weighted ? w : NULL;
    int none = pc->reduction == NN_REDUCTION_NONE;
    nn_error err = {{0}};
    nn_tensor *out = NULL, *g1 = NULL, *g2 = NULL;
    CHECK(nn_pointwise_loss_forward(&ctx, pc->kind, x, y, wt, pc->reduction,
                                    &out, &err) == 0);
    CHECK(nn_pointwise_loss_backward(&ctx, pc->kind, x, y, wt, pc->reduction,
                                     NULL, &g1, &err) == 0);
    CHECK(nn_pointwise_loss_backward(&ctx, pc->kind, x, y, wt, pc->reduction,
                                     none ? gv : gsc, &g2, &err) == 0);
    if (!out || !g1 || !g2) {
      fprintf(stderr, "  case %d: %s\n", c, err.msg);
    } else {
      CHECK(none ? nn_tensor_has_shape(out, 2, s) : out->ndim == 0);
      CHECK(nn_tensor_has_shape(g1, 2, s) && nn_tensor_has_shape(g2, 2, s));
      check_values(out, pc->out, none ? 6 : 1, "output", c);
      check_values(g1, pc->grad, 6, "grad", c);
      check_values(g2, pc->grad_g, 6, "grad with gout", c);
    }
    nn_tensor_release(out);
    nn_tensor_release(g1);
    nn_tensor_release(g2);
    nn_tensor_release(x);
    nn_tensor_release(y);
  }
  nn_tensor_release(w);
  nn_tensor_release(gv);
  nn_tensor_release(gsc);
}

/* ---- finite differences --------------------------------------------- */

/* sum_i gout_i * out_i (gout NULL: plain sum) in double. */
static double weighted_total(const nn_tensor *out, const nn_tensor *gout) {
  double s = 0.0;
  int64_t n = nn_tensor_numel(out);
  for (int64_t i = 0; i < n; i++)
    s += (double)nn_data(out)[i] * (gout ? (double)nn_data(gout)[i] : 1.0);
  return s;
}

/* Max |finite difference - analytic| over max(1, max |analytic|), for the
 * scalar L = sum(gout * forward(x)); fwd evaluates forward at x. */
typedef int (*forward_fn)(const nn_tensor *x, const void *arg, nn_tensor **out);

static double fd_error(forward_fn fwd, const void *arg, nn_tensor *x,
                       const nn_tensor *gout, const nn_tensor *analytic) {
  const float h = 1e-3f;
  int64_t n = nn_tensor_numel(x);
  double maxerr = 0.0, maxg = 1.0;
  float *xv = nn_data(x);
  for (int64_t i = 0; i < n; i++) {
    float x0 = xv[i], xp = x0 + h, xm = x0 - h;
    nn_tensor *op = NULL, *om = NULL;
    xv[i] = xp;
    fwd(x, arg, &op);
    xv[i] = xm;
    fwd(x, arg, &om);
    xv[i] = x0;
    if (!op || !om) return INFINITY;
    double fd = (weighted_total(op, gout) - weighted_total(om, gout)) /
                ((double)xp - (double)xm);
    double an = nn_data(analytic)[i];
    maxerr = fmax(maxerr, fabs(fd - an));
    maxg = fmax(maxg, fabs(an));
    nn_tensor_release(op);
    nn_tensor_release(om);
  }
  return maxerr / maxg;
}

typedef struct class_fd_arg {
  class_kind kind;
  const int32_t *labels;
  const nn_tensor *probs;
  const nn_class_loss_opts *o;
} class_fd_arg;

static int class_fd_forward(const nn_tensor *x, const void *arg,
                            nn_tensor **out) {
  const class_fd_arg *a = arg;
  return class_forward(a->kind, x, a->labels, a->probs, a->o, out, NULL);
}

/* Every class loss and option combination on a [5, 4] input with one
 * ignored sample, for a non-trivial output gradient. */
static void test_class_gradcheck(void) {
  enum { n = 5, c = 4 };
  int64_t xs[2] = {n, c}, ns = n, cs = c;
  float xv[n * c], pv[n * c], gv[n], wv[c] = {0.7f, 1.3f, 0.4f, 2.0f};
  for (int i = 0; i < n * c; i++) {
    xv[i] = 1.5f * sinf(1.7f * (float)i + 0.3f);
    pv[i] = 0.1f + 0.2f * (float)((i * 7) % 5);
  }
  for (int i = 0; i < n; i++) {
    gv[i] = 0.5f + 0.3f * (float)i * (i % 2 ? -1.0f : 1.0f);
    float s = 0.0f;
    for (int j = 0; j < c; j++) s += pv[i * c + j];
    for (int j = 0; j < c; j++) pv[i * c + j] /= s;
  }
  const int32_t labels[n] = {3, 1, 0, 1, 2};
  nn_tensor *x = tensor_of(2, xs, xv), *probs = tensor_of(2, xs, pv);
  nn_tensor *w = tensor_of(1, &cs, wv), *gvec = tensor_of(1, &ns, gv);
  nn_tensor *gsc = scalar_of(-0.8f);
  const nn_reduction reds[3] = {NN_REDUCTION_MEAN, NN_REDUCTION_SUM,
                                NN_REDUCTION_NONE};
  double worst = 0.0;
  for (int k = CE; k <= PROB; k++)
    for (int r = 0; r < 3; r++)
      for (int weighted = 0; weighted < 2; weighted++)
        for (int smooth = 0; smooth < 2; smooth++)
          for (int ign = 0; ign < 2; ign++) {
            if ((k == NLL && smooth) || (k == PROB && ign)) continue;
            nn_class_loss_opts o = {weighted ? w : NULL, smooth ? 0.3f : 0.0f,
                                    reds[r], ign ? 1 : NN_NO_IGNORE};
            const nn_tensor *gout = reds[r] == NN_REDUCTION_NONE ? gvec : gsc;
            nn_tensor *g = NULL;
            CHECK(class_backward((class_kind)k, x, labels, probs, &o, gout, &g,
                                 NULL) == 0);
            if (!g) continue;
            class_fd_arg a = {(class_kind)k, labels, probs, &o};
            double e = fd_error(class_fd_forward, &a, x, gout, g);
            if (!(e < 1e-3))
              fprintf(stderr, "  kind %d red %d w %d ls %d ign %d: error %g\n",
                      k, r, weighted, smooth, ign, e);
            worst = fmax(worst, e);
            nn_tensor_release(g);
          }
  CHECK(worst < 1e-3);
  nn_tensor_release(x);
  nn_tensor_release(probs);
  nn_tensor_release(w);
  nn_tensor_release(gvec);
  nn_tensor_release(gsc);
}

typedef struct pw_fd_arg {
  nn_pointwise_loss kind;
  const nn_tensor *y, *w;
  nn_reduction reduction;
} pw_fd_arg;

static int pw_fd_forward(const nn_tensor *x, const void *arg, nn_tensor **out) {
  const pw_fd_arg *a = arg;
  return nn_pointwise_loss_forward(&ctx, a->kind, x, a->y, a->w, a->reduction,
                                   out, NULL);
}

/* Pointwise losses away from their kinks (L1 at x = y, BCE at 0 and 1). */
static void test_pointwise_gradcheck(void) {
  int64_t s[2] = {2, 3};
  const float xv[6] = {0.15f, 0.8f, 0.35f, 0.6f, 0.9f, 0.25f};
  const float yv[6] = {0.0f, 1.0f, 0.7f, 0.2f, 0.5f, 0.9f};
  const float wv[6] = {1.2f, 0.5f, 2.0f, 0.3f, 1.5f, 0.8f};
  nn_tensor *x = tensor_of(2, s, xv), *y = tensor_of(2, s, yv);
  nn_tensor *w = tensor_of(2, s, wv), *gv = tensor_of(2, s, PG);
  nn_tensor *gsc = scalar_of(1.3f);
  const nn_reduction reds[3] = {NN_REDUCTION_MEAN, NN_REDUCTION_SUM,
                                NN_REDUCTION_NONE};
  double worst = 0.0;
  for (int k = NN_LOSS_MSE; k <= NN_LOSS_BCE_WITH_LOGITS; k++)
    for (int r = 0; r < 3; r++)
      for (int weighted = 0; weighted < 2; weighted++) {
        if (weighted && k < NN_LOSS_BCE) continue;
        const nn_tensor *gout = reds[r] == NN_REDUCTION_NONE ? gv : gsc;
        const nn_tensor *wt = weighted ? w : NULL;
        nn_tensor *g = NULL;
        CHECK(nn_pointwise_loss_backward(&ctx, (nn_pointwise_loss)k, x, y, wt,
                                         reds[r], gout, &g, NULL) == 0);
        if (!g) continue;
        pw_fd_arg a = {(nn_pointwise_loss)k, y, wt, reds[r]};
        double e = fd_error(pw_fd_forward, &a, x, gout, g);
        if (!(e < 1e-3))
          fprintf(stderr, "  kind %d red %d w %d: error %g\n", k, r, weighted,
                  e);
        worst = fmax(worst, e);
        nn_tensor_release(g);
      }
  CHECK(worst < 1e-3);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_tensor_release(w);
  nn_tensor_release(gv);
  nn_tensor_release(gsc);
}

/* ---- edge cases and errors ------------------------------------------- */

/* With every target ignored, "mean" is 0/0 = NaN as in PyTorch, and the
 * gradient is zero; NULL options mean the defaults (mean, no weight). */
static void test_all_ignored_and_default_opts(void) {
  int64_t xs[2] = {N, C};
  nn_tensor *x = tensor_of(2, xs, X), *out = NULL, *g = NULL;
  const int32_t same[N] = {1, 1, 1, 1};
  nn_class_loss_opts o = {NULL, 0.1f, NN_REDUCTION_MEAN, 1};
  CHECK(nn_cross_entropy_forward(&ctx, x, same, &o, &out, NULL) == 0);
  CHECK(out && isnan(nn_data(out)[0]));
  CHECK(nn_cross_entropy_backward(&ctx, x, same, &o, NULL, &g, NULL) == 0);
  for (int i = 0; g && i < N * C; i++) CHECK(nn_data(g)[i] == 0.0f);
  nn_tensor_release(out);
  nn_tensor_release(g);
  out = NULL;
  CHECK(nn_cross_entropy_forward(&ctx, x, T, NULL, &out, NULL) == 0);
  if (out) CHECK_NEAR(nn_data(out)[0], ce_cases[0].out[0], TOL);
  nn_tensor_release(out);
  nn_tensor_release(x);
}

/* Runs a failing call's message through a substring check. */
static void check_msg(int rc, const nn_error *err, const char *want) {
  CHECK(rc == -1);
  CHECK(strstr(err->msg, want) != NULL);
  if (!strstr(err->msg, want))
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err->msg, want);
}

static void test_class_errors(void) {
  int64_t xs[2] = {N, C}, x10s[2] = {N, 10}, s1 = N, s3[3] = {N, C, 1};
  int64_t ws = 5, gs2[2] = {N, 1};
  nn_tensor *x = tensor_of(2, xs, X), *x10 = nn_tensor_new(2, x10s, NULL);
  nn_tensor *x1 = nn_tensor_new(1, &s1, NULL), *x3 = nn_tensor_new(3, s3, NULL);
  nn_tensor *w5 = nn_tensor_new(1, &ws, NULL), *probs = tensor_of(2, xs, P);
  nn_tensor *g2 = nn_tensor_new(2, gs2, NULL),
            *gv = tensor_of(1, &s1, GOUT_VEC);
  nn_class_loss_opts o = {NULL, 0.0f, NN_REDUCTION_MEAN, NN_NO_IGNORE};
  nn_error err;
  nn_tensor *out = NULL;

  const int32_t big[N] = {0, 1, 11, 2};
  check_msg(nn_cross_entropy_forward(&ctx, x10, big, &o, &out, &err), &err,
            "target[3] = 12 is out of range 1..10");
  const int32_t neg[N] = {-1, 0, 0, 0};
  check_msg(nn_nll_forward(&ctx, x, neg, &o, &out, &err), &err,
            "target[1] = 0 is out of range 1..3");
  check_msg(nn_cross_entropy_backward(&ctx, x10, big, &o, NULL, &out, &err),
            &err, "target[3] = 12");
  check_msg(nn_nll_backward(&ctx, x, neg, &o, NULL, &out, &err), &err,
            "target[1] = 0");
  /* An ignored index is accepted even outside 0..C-1. */
  o.ignore_index = -1;
  CHECK(nn_nll_forward(&ctx, x, neg, &o, &out, &err) == 0);
  nn_tensor_release(out);
  out = NULL;
  o.ignore_index = NN_NO_IGNORE;

  check_msg(nn_cross_entropy_forward(&ctx, x1, T, &o, &out, &err), &err,
            "expected input of shape [N, C], got [4]");
  check_msg(nn_nll_forward(&ctx, x3, T, &o, &out, &err), &err,
            "expected input of shape [N, C], got [4, 3, 1]");
  o.weight = w5;
  check_msg(nn_cross_entropy_forward(&ctx, x, T, &o, &out, &err), &err,
            "expected weight of shape [3] (one per class), got [5]");
  check_msg(
      nn_cross_entropy_prob_backward(&ctx, x, probs, &o, NULL, &out, &err),
      &err, "expected weight of shape [3]");
  o.weight = NULL;
  o.label_smoothing = 1.5f;
  check_msg(nn_cross_entropy_forward(&ctx, x, T, &o, &out, &err), &err,
            "label_smoothing must be in [0, 1], got 1.5");
  o.label_smoothing = 0.0f;
  check_msg(nn_cross_entropy_prob_forward(&ctx, x, x10, &o, &out, &err), &err,
            "expected target of shape [4, 3] (as input), got [4, 10]");
  o.ignore_index = 0;
  check_msg(nn_cross_entropy_prob_forward(&ctx, x, probs, &o, &out, &err), &err,
            "ignore_index is not supported");
  o.ignore_index = NN_NO_IGNORE;
  check_msg(nn_cross_entropy_backward(&ctx, x, T, &o, gv, &out, &err), &err,
            "expected a scalar gradient of the loss, got shape [4]");
  o.reduction = NN_REDUCTION_NONE;
  check_msg(nn_cross_entropy_backward(&ctx, x, T, &o, g2, &out, &err), &err,
            "expected gradient of the loss of shape [4], got [4, 1]");
  check_msg(nn_nll_backward(&ctx, x, T, &o, x, &out, &err), &err, "got [4, 3]");
  o.reduction = (nn_reduction)7;
  check_msg(nn_nll_forward(&ctx, x, T, &o, &out, &err), &err,
            "unknown reduction");
  CHECK(out == NULL);

  nn_tensor_release(x);
  nn_tensor_release(x10);
  nn_tensor_release(x1);
  nn_tensor_release(x3);
  nn_tensor_release(w5);
  nn_tensor_release(probs);
  nn_tensor_release(g2);
  nn_tensor_release(gv);
}

static void test_pointwise_errors(void) {
  int64_t s[2] = {2, 3}, t[2] = {3, 2}, one = 1;
  const float bad[6] = {0.2f, 0.3f, 0.4f, 1.5f, 0.5f, 0.5f};
  nn_tensor *x = tensor_of(2, s, PX[2]), *y = tensor_of(2, s, PY[2]);
  nn_tensor *yt = nn_tensor_new(2, t, NULL), *xb = tensor_of(2, s, bad);
  nn_tensor *g1 = nn_tensor_new(1, &one, NULL);
  nn_error err;
  nn_tensor *out = NULL;
  check_msg(nn_pointwise_loss_forward(&ctx, NN_LOSS_MSE, x, yt, NULL,
                                      NN_REDUCTION_MEAN, &out, &err),
            &err, "expected target of shape [2, 3] (as input), got [3, 2]");
  check_msg(nn_pointwise_loss_forward(&ctx, NN_LOSS_BCE, x, y, yt,
                                      NN_REDUCTION_SUM, &out, &err),
            &err, "expected weight of shape [2, 3] (as input), got [3, 2]");
  check_msg(nn_pointwise_loss_forward(&ctx, NN_LOSS_L1, x, y, y,
                                      NN_REDUCTION_SUM, &out, &err),
            &err, "takes no weight");
  check_msg(nn_pointwise_loss_forward(&ctx, NN_LOSS_BCE, xb, y, NULL,
                                      NN_REDUCTION_MEAN, &out, &err),
            &err, "input[2][1] = 1.5 is outside [0, 1]");
  check_msg(nn_pointwise_loss_backward(&ctx, NN_LOSS_BCE, xb, y, NULL,
                                       NN_REDUCTION_MEAN, NULL, &out, &err),
            &err, "input[2][1] = 1.5");
  nn_data(xb)[3] = NAN;
  check_msg(nn_pointwise_loss_forward(&ctx, NN_LOSS_BCE, xb, y, NULL,
                                      NN_REDUCTION_NONE, &out, &err),
            &err, "input[2][1] = nan");
  check_msg(nn_pointwise_loss_backward(&ctx, NN_LOSS_MSE, x, y, NULL,
                                       NN_REDUCTION_NONE, g1, &out, &err),
            &err, "expected gradient of the loss of shape [2, 3], got [1]");
  check_msg(nn_pointwise_loss_backward(&ctx, NN_LOSS_MSE, x, y, NULL,
                                       NN_REDUCTION_SUM, x, &out, &err),
            &err, "expected a scalar gradient");
  check_msg(nn_pointwise_loss_forward(&ctx, (nn_pointwise_loss)9, x, y, NULL,
                                      NN_REDUCTION_SUM, &out, &err),
            &err, "unknown pointwise loss");
  /* A [1] gradient is accepted for a reduced loss. */
  CHECK(nn_pointwise_loss_backward(&ctx, NN_LOSS_MSE, x, y, NULL,
                                   NN_REDUCTION_SUM, g1, &out, &err) == 0);
  nn_tensor_release(out);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_tensor_release(yt);
  nn_tensor_release(xb);
  nn_tensor_release(g1);
}

/* ---- determinism ------------------------------------------------------ */

static int same_tensor(const nn_tensor *a, const nn_tensor *b) {
  return a && b && nn_tensor_same_shape(a, b) &&
         memcmp(nn_data(a), nn_data(b),
                (size_t)nn_tensor_numel(a) * sizeof(float)) == 0;
}

/* Inputs large enough for the parallel paths: results with 1 and 3
 * threads must be bit-identical. */
static void test_thread_count_independent(void) {
  enum { n = 3001, c = 37 };
  int64_t xs[2] = {n, c}, cs = c;
  nn_tensor *x = nn_tensor_empty(2, xs, NULL),
            *y = nn_tensor_empty(2, xs, NULL);
  nn_tensor *w = nn_tensor_empty(1, &cs, NULL);
  int32_t *labels = malloc(n * sizeof *labels);
  nn_fill_normal(&ctx, nn_data(x), n * c, 0.0f, 2.0f);
  nn_fill_uniform(&ctx, nn_data(y), n * c, 0.0f, 1.0f);
  nn_fill_uniform(&ctx, nn_data(w), c, 0.5f, 2.0f);
  for (int i = 0; i < n; i++) labels[i] = (i * 13) % c;
  nn_class_loss_opts o = {w, 0.1f, NN_REDUCTION_MEAN, 5};
  nn_tensor *r[2][6] = {{NULL}};
  for (int t = 0; t < 2; t++) {
    nn_ctx_set_threads(&ctx, t ? 3 : 1);
    CHECK(nn_cross_entropy_forward(&ctx, x, labels, &o, &r[t][0], NULL) == 0);
    CHECK(nn_cross_entropy_backward(&ctx, x, labels, &o, NULL, &r[t][1],
                                    NULL) == 0);
    CHECK(nn_pointwise_loss_forward(&ctx, NN_LOSS_MSE, x, y, NULL,
                                    NN_REDUCTION_MEAN, &r[t][2], NULL) == 0);
    CHECK(nn_pointwise_loss_backward(&ctx, NN_LOSS_BCE_WITH_LOGITS, x, y, y,
                                     NN_REDUCTION_SUM, NULL, &r[t][3],
                                     NULL) == 0);
    nn_class_loss_opts po = {w, 0.1f, NN_REDUCTION_MEAN, NN_NO_IGNORE};
    CHECK(nn_cross_entropy_prob_forward(&ctx, x, y, &po, &r[t][4], NULL) == 0);
    CHECK(nn_cross_entropy_prob_backward(&ctx, x, y, &po, NULL, &r[t][5],
                                         NULL) == 0);
  }
  nn_ctx_set_threads(&ctx, 1);
  for (int i = 0; i < 6; i++) {
    CHECK(same_tensor(r[0][i], r[1][i]));
    nn_tensor_release(r[0][i]);
    nn_tensor_release(r[1][i]);
  }
  free(labels);
  nn_tensor_release(x);
  nn_tensor_release(y);
  nn_tensor_release(w);
}

int main(void) {
  nn_ctx_init(&ctx);
  nn_ctx_set_threads(&ctx, 2);
  RUN(test_cross_entropy_vs_torch);
  RUN(test_nll_vs_torch);
  RUN(test_cross_entropy_prob_vs_torch);
  RUN(test_pointwise_vs_torch);
  RUN(test_class_gradcheck);
  RUN(test_pointwise_gradcheck);
  RUN(test_all_ignored_and_default_opts);
  RUN(test_class_errors);
  RUN(test_pointwise_errors);
  RUN(test_thread_count_independent);
  return check_report("loss");
}
