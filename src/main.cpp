#include "loginflow/app.h"

int main(int argc, char** argv) { return loginflow::loginflowMain(argc, argv); }
